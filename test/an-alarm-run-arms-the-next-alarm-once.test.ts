// Every setAlarm is a billed storage write, and the presence sweep runs every PRESENCE_TTL_MS / 2 in every object
// holding a socket (docs/scaling.md: the largest recurring cost per connected user). A run of the alarm arms the
// next alarm once, not once for the job and again for the runner.
import { expect, it } from "vitest";
import { env, runInDurableObject } from "cloudflare:test";
import { JobRunner } from "../src/objects/shared/jobs";
import { uniq } from "./helpers";

it("a run of the alarm arms the next alarm with one setAlarm, also when it fired early and nothing was due", async () => {
  // A blank conversation object (never created) lends its storage; its own runner does not exist.
  const stub = env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(uniq("jobs")));
  await runInDurableObject(stub, async (_o, state) => {
    const sets: number[] = [];
    const setAlarm = state.storage.setAlarm.bind(state.storage);
    state.storage.setAlarm = (at: number | Date, options?: DurableObjectSetAlarmOptions) => {
      sets.push(Number(at));
      return setAlarm(at, options);
    };
    const runner = new JobRunner<"sweep" | "later">(state.storage);
    const next = Date.now() + 15_000;
    runner.define("sweep", async () => ({ at: next }));
    runner.define("later", async () => "done");
    runner.ensure("sweep", Date.now() - 1);
    runner.ensure("later", Date.now() + 60_000);
    sets.length = 0;

    await runner.alarm(); // "sweep" is due and asks for `next`
    expect(sets).toEqual([next]);
    expect(await state.storage.getAlarm()).toBe(next);

    sets.length = 0;
    await runner.alarm(); // fired early: nothing due, nothing changes, but the alarm that fired is gone
    expect(sets).toEqual([next]);
  });
});
