// Typing frames are throttled per member whatever their `active` state: alternating true/false must not let
// a member flood the others' sockets (in a 5,000-member group every frame is 5,000 sends). A stop still hides
// an indicator that is showing, and sending a message lets the next `typing` out at once.
import { expect, it } from "vitest";
import { TestSocket, createGroup, mintUser } from "./helpers";

/** Wait until every frame `s` sent before this call has been handled by the object (a non-exact ping reaches it in order). */
async function drained(s: TestSocket): Promise<void> {
  s.send('{"type": "ping"}');
  await s.next("pong");
}

it("alternating active true/false cannot bypass the typing throttle; stops stay meaningful", async () => {
  const [a, b] = [await mintUser(), await mintUser()];
  const g = await createGroup(a, [b]);
  const [sa, sb] = [await TestSocket.conversation(g.id, a), await TestSocket.conversation(g.id, b)];
  await Promise.all([sa.next("caught_up"), sb.next("caught_up")]);

  for (let i = 0; i < 400; i++) sa.send({ type: "typing", active: i % 2 === 0 });
  await drained(sa);
  await new Promise((r) => setTimeout(r, 200));
  const seen = () => sb.frames.filter((f) => f.type === "typing") as { active: boolean }[];
  // One indicator shown and one stop: two frames, not 400.
  expect(seen().map((f) => f.active)).toEqual([true, false]);

  // Another stop while nothing is showing says nothing new and is dropped too.
  sa.send({ type: "typing", active: false });
  await drained(sa);
  await new Promise((r) => setTimeout(r, 100));
  expect(seen()).toHaveLength(2);

  // Sending a message ends typing: the next `typing` goes out at once, then the throttle holds again.
  sa.send({ type: "send", clientMsgId: "m1", body: "hello" });
  await sa.next("ack");
  for (let i = 0; i < 50; i++) sa.send({ type: "typing", active: i % 2 === 0 });
  await drained(sa);
  await new Promise((r) => setTimeout(r, 200));
  expect(seen().map((f) => f.active)).toEqual([true, false, true, false]);
  sa.close();
  sb.close();
});
