// Start a baseline server (a relay, or scenario 9's file server) in a child process so it never shares
// the load generator's event loop.
import { fork, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { BENCH_DIR } from "./env.ts";

export interface RelayServer {
  kind: "plain" | "durable";
  wsUrl: string;
  pid: number;
  stop(): Promise<void>;
}

/** The plain Node `http` file server of scenario 9 (`baselines/files.ts`). */
export interface FileServer {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

async function forkServer(script: string, args: string[]): Promise<{ port: number; pid: number; stop(): Promise<void> }> {
  const child: ChildProcess = fork(join(BENCH_DIR, "baselines", script), args, {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const { port } = await new Promise<{ port: number }>((resolve, reject) => {
    child.once("message", (m) => resolve(m as { port: number }));
    child.once("exit", (code) => reject(new Error(`${script} exited with ${code}`)));
  });
  return {
    port,
    pid: child.pid!,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.disconnect();
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3_000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
    },
  };
}

export async function startRelay(kind: "plain" | "durable"): Promise<RelayServer> {
  const s = await forkServer("relay.ts", kind === "durable" ? ["--durable"] : []);
  return { kind, wsUrl: `ws://127.0.0.1:${s.port}`, pid: s.pid, stop: s.stop };
}

export async function startFileServer(): Promise<FileServer> {
  const s = await forkServer("files.ts", []);
  return { url: `http://127.0.0.1:${s.port}`, pid: s.pid, stop: s.stop };
}

export function relayUrl(wsBase: string, room: string, user: string): string {
  return `${wsBase}/?room=${encodeURIComponent(room)}&user=${encodeURIComponent(user)}`;
}
