// One real local server per test file: started before the file's tests, stopped after them.
import { afterAll, beforeAll } from "vitest";
import { startLocalServer, type LocalServer } from "./server.ts";

/** Call at the top of a test file; read `.current` inside tests. */
export function useLocalServer(options: Parameters<typeof startLocalServer>[0] = {}): { current: LocalServer } {
  const holder = {} as { current: LocalServer };
  beforeAll(async () => {
    holder.current = await startLocalServer(options);
  }, 60_000);
  afterAll(async () => {
    await holder.current?.stop();
  });
  return holder;
}
