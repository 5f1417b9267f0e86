// `npm run verify`: a Jepsen-style consistency check of edgechat's core promise. Once a message is
// acknowledged it is never lost, never duplicated, and every member sees the same order.
//
//   npm run verify                                   # local workerd, 3,000 messages
//   npm run verify -- --messages 100000              # the long form
//   npm run verify -- --url https://chat.example.com --admin-secret $ADMIN_SECRET [--d1-database edgechat]
//   npm run verify -- --self-test                    # prove the checker catches planted faults
//
// Exits 0 when no violation was found, 1 on any violation, 2 on a usage error.
import { parseArgs } from "node:util";
import { formatReport } from "./verify/checker.ts";
import { selfTest } from "./verify/selftest.ts";
import { DEFAULTS, verify } from "./verify/run.ts";
import { DEFAULT_FAULTS, DEFAULT_MIX, type Mix } from "./verify/workload.ts";

const USAGE = `usage: npm run verify -- [options]
  --url URL               target deployment (default: start a local server)
  --admin-secret S        admin secret of the target, to mint users (or EDGECHAT_ADMIN_SECRET)
  --d1-database NAMES     also read D1 directly with \`wrangler d1 execute NAME --remote\` (your credentials); the
                          primary database and every archive shard, comma-separated
  --messages N            messages to send in total (default ${DEFAULTS.messages}); changes come on top, per --mix
  --mix S,E,D,R           weights of sends, edits, deletes and reactions (default ${DEFAULT_MIX.sends},${DEFAULT_MIX.edits},${DEFAULT_MIX.deletes},${DEFAULT_MIX.reactions}:
                          30% of the entries are changes); also sends=70,edits=8,... ; 100,0,0,0: messages only
  --clients N             users (default ${DEFAULTS.clients})
  --conversations N       group conversations (default ${DEFAULTS.conversations})
  --memberships N         conversations each client joins (default ${DEFAULTS.membershipsPerClient})
  --seed N                workload seed (default: random, printed)
  --window N              unacked messages per socket before it waits (default ${DEFAULTS.window})
  --no-faults             no injected faults (a baseline)
  --var KEY=VALUE         extra var for the local server (repeatable), e.g. a higher rate limit
  --timeout SECONDS       give up after this long (default ${DEFAULTS.timeoutMs / 1000})
  --self-test             check the checker against doctored logs, then exit
  --json                  print the report as JSON`;

function int(name: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name} must be an integer >= ${min}\n${USAGE}`);
    process.exit(2);
  }
  return n;
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: {
        url: { type: "string" },
        "admin-secret": { type: "string" },
        "d1-database": { type: "string" },
        messages: { type: "string" },
        mix: { type: "string" },
        clients: { type: "string" },
        conversations: { type: "string" },
        memberships: { type: "string" },
        seed: { type: "string" },
        window: { type: "string" },
        "no-faults": { type: "boolean" },
        var: { type: "string", multiple: true },
        timeout: { type: "string" },
        "self-test": { type: "boolean" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  if (args["self-test"]) {
    const result = selfTest();
    for (const line of result.lines) console.log(line);
    console.log(result.ok ? "self-test passed: every planted fault was reported" : "self-test FAILED");
    return result.ok ? 0 : 1;
  }
  const vars = { ...DEFAULTS.vars };
  for (const kv of args.var ?? []) {
    const i = kv.indexOf("=");
    if (i < 1) {
      console.error(`--var expects KEY=VALUE, got ${kv}`);
      return 2;
    }
    vars[kv.slice(0, i)] = kv.slice(i + 1);
  }
  let mix: Mix = DEFAULT_MIX;
  if (args.mix !== undefined) {
    const names = ["sends", "edits", "deletes", "reactions"] as const;
    const parts = args.mix.split(",").map((p) => p.trim());
    const values: Record<string, number> = {};
    parts.forEach((p, i) => {
      const [k, v] = p.includes("=") ? p.split("=") : [names[i], p];
      values[k ?? ""] = Number(v);
    });
    const parsed = Object.fromEntries(names.map((n) => [n, values[n] ?? 0])) as unknown as Mix;
    if (parts.length > 4 || Object.keys(values).some((k) => !(names as readonly string[]).includes(k)) || names.some((n) => !(parsed[n] >= 0)) || !(parsed.sends > 0)) {
      console.error(`--mix expects four weights (sends > 0), e.g. 70,8,4,18 or sends=70,edits=8,deletes=4,reactions=18\n${USAGE}`);
      return 2;
    }
    mix = parsed;
  }
  const seed = int("seed", args.seed, Math.floor(Math.random() * 2 ** 31), 0);
  const log = args.json ? (line: string) => console.error(line) : (line: string) => console.log(line);
  const { report } = await verify({
    ...DEFAULTS,
    url: args.url?.replace(/\/$/, ""),
    adminSecret: args["admin-secret"] ?? process.env.EDGECHAT_ADMIN_SECRET,
    d1Database: args["d1-database"],
    messages: int("messages", args.messages, DEFAULTS.messages),
    clients: int("clients", args.clients, DEFAULTS.clients, 2),
    conversations: int("conversations", args.conversations, DEFAULTS.conversations),
    membershipsPerClient: int("memberships", args.memberships, DEFAULTS.membershipsPerClient),
    seed,
    window: int("window", args.window, DEFAULTS.window),
    mix,
    faults: args["no-faults"] ? { disconnect: 0, lostAck: 0, abandon: 0, duplicate: 0, slowConsumer: 0 } : DEFAULT_FAULTS,
    vars,
    timeoutMs: int("timeout", args.timeout, DEFAULTS.timeoutMs / 1000) * 1000,
    log,
  });
  if (args.json) console.log(JSON.stringify({ seed, ...report }, null, 2));
  else {
    console.log(`seed ${seed} (rerun with --seed ${seed})`);
    console.log(formatReport(report));
  }
  return report.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(1);
  },
);
