// Shared by the inbox tests: a user object's Inbox built by hand inside a real user object, with a push queue
// that records the jobs instead of sending them (the workerd test config sets no PUSH_WEBHOOK_URL).
import { env } from "cloudflare:test";
import type { PushJob } from "../src/objects/shared/updates";
import { Inbox, type InboxDeps } from "../src/objects/user/inbox";
import { Meta } from "../src/objects/user/meta";

/** An Inbox on `state`'s storage, no device connected, pushing into `jobs`. */
export function recordingInbox(state: DurableObjectState, jobs: PushJob[]): Inbox {
  const deps = {
    ctx: state,
    env: { ...env, PUSH_WEBHOOK_URL: "https://push.test/hook", PUSH_QUEUE: { send: async (job: PushJob) => void jobs.push(job) } },
    sql: state.storage.sql,
    meta: new Meta(state.storage.sql),
    sockets: { size: 0, broadcast: () => undefined },
    isOnline: () => false,
    jobs: { define: () => undefined, ensure: () => undefined },
  } as unknown as InboxDeps;
  return new Inbox(deps);
}
