// The steps of an erasure job (docs/protocol.md 17; the job itself is admin-jobs.ts). In order:
//   account        the D1 account goes first (users row, refresh tokens, settings, blocks): nobody can log in or
//                  refresh as the user from here on;
//   list           the conversations the user is or was in: the D1 directory, and this inbox's current and left ones;
//   conversations  each conversation object erases the user in bounded steps (conversation/member-data.ts: they
//                  leave, their messages become tombstones, their reactions are taken back, their files deleted)
//                  and answers done only once D1, the R2 segments and the attachments bucket have it all;
//   exports        their export files in R2;
//   sweep          the directory again: a conversation they joined meanwhile is erased too; rows no object removed
//                  are deleted;
//   finish         the job is done in D1, then this object's storage is deleted (deleteAll): nothing of the user
//                  is left here either.
// Every step is idempotent, so a crash or a deploy at any point repeats at most the step it was in.
import { finishJob } from "../../db/admin-jobs";
import { deleteMemberships, listMemberships } from "../../db/memberships";
import { eraseAccount } from "../../db/users";
import { unwrap } from "../../lib/errors";
import type { EraseCursor } from "../conversation/member-data";
import { conversationStub } from "../shared/stubs";
import type { AdminJobs, JobSteps, LocalJob, StepOutcome } from "./admin-jobs";

/** Export files deleted per step (an R2 list page). */
const EXPORTS_PAGE = 500;
/** Directory rows looked at per sweep. */
const SWEEP_PAGE = 500;

export class ErasureSteps implements JobSteps {
  readonly #env: Env;
  readonly #admin: AdminJobs;
  /** Delete this object's storage (the last step): UserObject closes the user's sockets and calls deleteAll. */
  readonly #wipe: () => Promise<void>;

  constructor(deps: { env: Env; admin: AdminJobs; wipe: () => Promise<void> }) {
    this.#env = deps.env;
    this.#admin = deps.admin;
    this.#wipe = deps.wipe;
  }

  async step(job: LocalJob): Promise<StepOutcome> {
    const db = this.#env.DB;
    switch (job.progress.phase) {
      case "start":
      case "account":
        await eraseAccount(db, job.userId);
        return this.#next(job, "list");
      case "list":
        return (await this.#admin.list(job)) ? this.#next(job, "conversations") : this.#next(job, "list");
      case "conversations":
        return this.#conversation(job);
      case "exports":
        return this.#exports(job);
      case "sweep": {
        const ids = await listMemberships(db, job.userId, "", SWEEP_PAGE);
        const fresh = ids.filter((id) => !this.#admin.isListed(job, id));
        if (fresh.length > 0) {
          this.#admin.addConversations(job, fresh);
          return this.#next(job, "conversations");
        }
        await deleteMemberships(db, job.userId);
        return this.#next(job, "finish");
      }
      case "finish": {
        const { conversations, messages, reactions } = job.progress;
        await finishJob(db, job.id, { progress: job.progress, result: { conversations: conversations.total, messages, reactions } });
        await this.#wipe();
        return "finished";
      }
    }
  }

  async abandon(): Promise<void> {
    // Nothing is held: what was erased stays erased, and a new request starts again from the top.
  }

  /** One step in one conversation (conversation/member-data.ts eraseStep). */
  async #conversation(job: LocalJob): Promise<StepOutcome> {
    const id = this.#admin.nextConversation(job);
    if (id === null) return this.#next(job, "exports");
    const cursor = (job.cursor.conversation?.erase as EraseCursor | undefined) ?? { phase: "leave" };
    const step = await unwrap(conversationStub(this.#env, id).eraseMember(job.userId, cursor));
    job.progress.messages += step.messages;
    job.progress.reactions += step.reactions;
    if (step.next === null) this.#admin.conversationDone(job);
    else job.cursor.conversation = { id, erase: step.next };
    if (step.waitingFor) job.progress.waiting = `conversation ${id}: ${step.waitingFor}`;
    this.#admin.commit(job);
    return step.retryAfterMs !== undefined ? { waitMs: step.retryAfterMs } : "more";
  }

  /** The user's export files (any left from earlier exports). */
  async #exports(job: LocalJob): Promise<StepOutcome> {
    const bucket = this.#env.HISTORY;
    const listed = await bucket.list({ prefix: `exports/${job.userId}/`, limit: EXPORTS_PAGE });
    if (listed.objects.length > 0) await bucket.delete(listed.objects.map((o) => o.key));
    return listed.truncated ? "more" : this.#next(job, "sweep");
  }

  #next(job: LocalJob, phase: LocalJob["progress"]["phase"]): StepOutcome {
    job.progress.phase = phase;
    this.#admin.commit(job);
    return "more";
  }
}
