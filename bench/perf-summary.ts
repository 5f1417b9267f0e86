// Summarise `perf script` output of the workerd process into "where does the time go" categories.
//   perf record -F 999 -g -p <workerd pid> -o perf.data   (bench/profile.ts runs the load)
//   perf script -i perf.data | tsx bench/perf-summary.ts
// Each sample is walked from the leaf up; generic frames (locks, allocation, the kj event loop) are
// skipped until a frame names a subsystem, so a malloc inside JSON.stringify counts as JSON.
import { createInterface } from "node:readline";

const SPECIFIC: [string, RegExp][] = [
  ["storage I/O in the kernel (pwrite, fsync, ext4/jbd2)", /ext4_|jbd2|__x64_sys_fsync|__x64_sys_fdatasync|__x64_sys_pwrite|vfs_fsync|file_write_iter|blk_mq|iomap|filemap_|block_commit_write|generic_perform_write/],
  ["socket I/O in the kernel (tcp, epoll)", /tcp_|__x64_sys_writev|__x64_sys_read|__x64_sys_recv|__x64_sys_send|sock_|__x64_sys_epoll|ep_poll|inet_|skb_|__sys_sendmsg|do_writev/],
  ["SQLite (statements, WAL, commit)", /sqlite3|walChecksum|SqliteDatabase|SqlStorage|ActorSqlite/],
  ["JSON parse/stringify", /Json(Parser|Stringifier)|JsonParse|JsonStringify/],
  ["garbage collection + V8 handles", /Scavenge|MarkCompact|Sweep|cppgc|GlobalHandles|ConcurrentMarking|MinorMS|TracedHandles|v8::internal::Heap::/],
  ["WebSocket send path (runtime)", /WebSocket::send|WebSocket::pump|WebSocketImpl|WebSocketPipe|WebSocket::outgoing|ensurePumping|HibernationManager/],
  ["JS execution (handlers, validation, routing)", /^Builtins_|^\[JIT\]|Interpreter|v8::internal::Runtime_|v8::internal::(LookupIterator|Object::|JSObject|String::)/],
];
const GENERIC: [string, RegExp][] = [
  ["memory allocation", /tcmalloc|malloc|^free|operator new|memmove|memcpy|memset/],
  ["locks, clocks, other syscalls", /mutex|Mutex|futex|pthread|_raw_spin|spin_unlock|clock_gettime|syscall|entry_SYSCALL/],
  ["runtime event loop + promises (kj)", /^kj::|capnp::/],
];

const counts = new Map<string, number>();
let total = 0;
let stack: string[] = [];

function classify(frames: string[]): string {
  let fallback: string | null = null;
  for (const f of frames) {
    for (const [name, re] of SPECIFIC) if (re.test(f)) return name;
    if (fallback === null) for (const [name, re] of GENERIC) if (re.test(f)) fallback = name;
  }
  return fallback ?? "other";
}

function flush(): void {
  if (stack.length === 0) return;
  total++;
  const cat = classify(stack);
  counts.set(cat, (counts.get(cat) ?? 0) + 1);
  stack = [];
}

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  if (line.trim() === "") {
    flush();
    continue;
  }
  if (!line.startsWith("\t") && !line.startsWith(" ")) continue; // sample header
  const m = /^\s+[0-9a-f]+\s+(.+?)\s+\(([^)]*)\)\s*$/.exec(line);
  if (!m) continue;
  const sym = m[1]!.replace(/\+0x[0-9a-f]+$/, "");
  stack.push(sym === "[unknown]" && /JIT|perf-/.test(m[2]!) ? "[JIT]" : sym);
}
flush();
console.log(`| where (workerd on-CPU samples) | share |\n|---|---|`);
for (const [name, n] of [...counts].sort((a, b) => b[1] - a[1])) console.log(`| ${name} | ${((100 * n) / total).toFixed(1)}% |`);
console.log(`\n${total} samples`);
