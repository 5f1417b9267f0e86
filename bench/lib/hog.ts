// The `--hog` pass: a child process that spins one core (a busy loop, normal priority) while a
// scenario runs a second time, to see how edgechat degrades when the machine is short of CPU.
// On this 2-core machine that leaves one core for the runtime, the relays and the load generator.
import { spawn, type ChildProcess } from "node:child_process";
import { hogPids } from "./cpu.ts";

export interface Hog {
  pid: number;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
let exitHook = false;

export async function startHog(): Promise<Hog> {
  const child = spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" });
  const pid = child.pid;
  if (pid === undefined) throw new Error("could not start the CPU hog");
  running.add(child);
  hogPids.add(pid);
  if (!exitHook) {
    // Never leave a spinning process behind, even if the run dies.
    exitHook = true;
    process.on("exit", () => {
      for (const c of running) c.kill("SIGKILL");
    });
  }
  // Let it get on-CPU before the measurement starts.
  await new Promise((r) => setTimeout(r, 200));
  return {
    pid,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGKILL");
        await exited;
      }
      running.delete(child);
      hogPids.delete(pid);
    },
  };
}
