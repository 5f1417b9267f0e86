// Refresh tokens rotate and a reused one revokes the family: concurrent refreshes in one instance share
// one request, and instances sharing a saved session (tabs) refresh once under a lock and adopt it.
import { beforeAll, expect, it } from "vitest";
import type { LocalServer } from "../../e2e/server.ts";
import { useLocalServer } from "../../e2e/use-server.ts";
import { Auth, type Session } from "../src/index";

const local = useLocalServer();
let server: LocalServer;
beforeAll(() => {
  server = local.current;
});

it("refreshes once for concurrent callers, and tabs sharing a session never reuse a refresh token", async () => {
  let refreshCalls = 0;
  const countingFetch = (input: string, init?: RequestInit) => {
    if (input.endsWith("/v1/auth/refresh")) refreshCalls++;
    return fetch(input, init);
  };
  const first = new Auth(server.url, countingFetch);
  await first.signup(`tab_${Date.now().toString(36)}`, "correct horse battery");

  // One instance: three callers, one request.
  const tokens = await Promise.all([first.getAccessToken("expired"), first.getAccessToken("expired"), first.getAccessToken("expired")]);
  expect(refreshCalls).toBe(1);
  expect(new Set(tokens).size).toBe(1);

  // Two "tabs" with the same saved session, a shared store and a shared lock.
  let saved: Session | null = first.session;
  let queue = Promise.resolve();
  const lock = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn);
    queue = run.then(() => undefined, () => undefined);
    return run;
  };
  const tabs = [0, 1].map(() => new Auth(server.url, countingFetch, saved, { lock, reload: () => saved }));
  for (const t of tabs) t.on("change", (s) => (saved = s));
  refreshCalls = 0;
  const [a, b] = await Promise.all(tabs.map((t) => t.refresh()));
  expect(refreshCalls).toBe(1);
  expect(a!.refreshToken).toBe(b!.refreshToken);
  // The family is intact: the adopted refresh token still works.
  await expect(tabs[1]!.refresh()).resolves.toMatchObject({ user: first.user });
});
