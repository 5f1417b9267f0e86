// Every parameter of a run, by mode. `full` is the scenarios unchanged; `quick` is a smaller
// smoke run (under 2 minutes); `tiny` only proves the harness counts every message (CI).
export type Mode = "full" | "quick" | "tiny";

export interface Params {
  mode: Mode;
  bodyBytes: number;
  /**
   * Server vars set on every edgechat runtime. The per-user send rate limit and per-user socket cap
   * are product policy, not capacity: they are lifted so the scenarios measure what the system can
   * carry (one bench user sends 100 msg/s in scenario 1 and thousands in scenario 2).
   */
  serverVars: Record<string, string>;
  s1: { ratePerSec: number; messages: number; warmup: number };
  s2: { senders: number; seconds: number; warmupSeconds: number; windowPerSender: number; batchSize: number; batchWindowPerSender: number };
  s3: { sizes: number[]; messages: number; warmup: number; gapMs: number };
  s4: { conversations: number; socketsPerConversation: number; users: number; probeMessages: number; probeRatePerSec: number; settleMs: number };
  s5: { clients: number; missed: number; before: number };
  s6: HistoryParams;
  s7: { conversations: number; requests: number; warmup: number };
  s8: NotifyParams;
  s9: AttachmentParams;
}

/**
 * Scenario 6 (history pages from every tier). One conversation of `messages` on the main runtime, whose
 * HOT_TAIL_MESSAGES / WARM_MESSAGES / SEGMENT_MESSAGES are set from `hotTail`, `warmMessages` and
 * `segmentMessages` so that all three tiers hold rows; `requests` timed rounds (one page of each kind per
 * round) after `warmup` rounds. `large`: the big conversation whose cold tier is paged at its start, middle and
 * end (`pagesPerPosition` segments each), on a fresh runtime with its own tier vars (`ownRuntime`), or on the
 * main runtime with the main vars (tiny).
 */
export interface HistoryParams {
  messages: number;
  hotTail: number;
  warmMessages: number;
  segmentMessages: number;
  batchSize: number;
  requests: number;
  warmup: number;
  large: { messages: number; hotTail: number; warmMessages: number; segmentMessages: number; pagesPerPosition: number; ownRuntime: boolean; settleTimeoutMs: number };
}

/**
 * Scenario 9 (attachments). Sizes in bytes (decimal: "10 MB" = 10,000,000). `largeBytes` is uploaded
 * both in one request (it must stay <= 100 MiB, the one-request limit) and as a multipart upload with
 * `partConcurrency` parts in flight; `smallBytes` in one request. Each case `reps` times, each time
 * uploaded then downloaded, on edgechat and on the baseline file server. `refuseRequests` uploads
 * declare `refuseDeclaredBytes` and stall their body (the time to the 413 is measured). RSS of the
 * serving process is sampled every `sampleEveryMs` during transfers.
 */
export interface AttachmentParams {
  smallBytes: number;
  largeBytes: number;
  reps: number;
  partConcurrency: number;
  refuseDeclaredBytes: number;
  refuseRequests: number;
  sampleEveryMs: number;
  /** On a fresh runtime of its own (full, quick), or on the main one (tiny: short, memory not meaningful). */
  ownRuntime: boolean;
}

/**
 * Scenario 8 (live inbox notifications on the user socket). `cases`: "direct" or a group size. Each
 * case sends `warmup` uncounted messages (waking the members' objects), then runs the `gaps` blocks in
 * order on the same sockets: `messages` sends `gapMs` apart. Before each block the conversation is quiet for at least `quietMs`
 * (edgechat coalesces inbox updates per conversation per second: a block must not inherit the
 * previous block's window). A recipient that has not heard of a message `deadlineMs` after it was
 * sent counts it as missed.
 */
export interface NotifyParams {
  cases: string[];
  gaps: { gapMs: number; messages: number }[];
  warmup: number;
  quietMs: number;
  deadlineMs: number;
}

const LIFT_LIMITS = {
  SEND_RATE_PER_SECOND: "1000000000",
  SEND_BURST: "1000000000",
  MAX_SOCKETS_PER_USER: "1000",
  // The harness puts minted strangers in groups and creates conversations far faster than a person does.
  GROUP_ADDS_DEFAULT: "anyone",
  CREATE_CONVERSATIONS_BURST: "1000000000",
  MEMBER_CHANGES_BURST: "1000000000",
  PRESENCE_SUBSCRIBES_BURST: "1000000000",
};

/**
 * Scenario 9 uploads a 100 MB file; the default attachment limit is 25 MiB (a product setting).
 * 256 MiB: a 100 MB file passes in one request (the route's own cap is 100 MiB) and as multipart.
 */
const ATTACHMENT_LIMIT = { MAX_ATTACHMENT_BYTES: String(256 * 1024 * 1024) };

export function paramsFor(mode: Mode): Params {
  const p = paramsBySize(mode);
  // Scenario 6's tier sizes apply to every conversation of the main runtime (vars are per runtime): scenario 2's
  // large conversations go cold too, in the background (scenario 6 waits for that work to end before timing).
  const tiers = { HOT_TAIL_MESSAGES: String(p.s6.hotTail), WARM_MESSAGES: String(p.s6.warmMessages), SEGMENT_MESSAGES: String(p.s6.segmentMessages) };
  return { ...p, serverVars: { ...LIFT_LIMITS, ...ATTACHMENT_LIMIT, ...tiers } };
}

function paramsBySize(mode: Mode): Omit<Params, "serverVars"> {
  const bodyBytes = 100;
  if (mode === "full") {
    return {
      mode,
      bodyBytes,
      s1: { ratePerSec: 100, messages: 3000, warmup: 100 },
      s2: { senders: 10, seconds: 10, warmupSeconds: 1, windowPerSender: 10, batchSize: 50, batchWindowPerSender: 2 },
      s3: { sizes: [100, 1000, 5000], messages: 20, warmup: 2, gapMs: 50 },
      s4: { conversations: 1000, socketsPerConversation: 10, users: 1000, probeMessages: 1000, probeRatePerSec: 100, settleMs: 3000 },
      s5: { clients: 1000, missed: 100, before: 10 },
      // cold 1-60,000 (60 segments), warm 60,001-90,000, hot 90,001-100,000. Then 1,000,000 messages on a runtime of
      // their own: cold 1-980,000 (980 segments), warm 980,001-990,000, hot 990,001-1,000,000.
      s6: {
        messages: 100_000,
        hotTail: 10_000,
        warmMessages: 40_000,
        segmentMessages: 1_000,
        batchSize: 50,
        requests: 1000,
        warmup: 50,
        large: { messages: 1_000_000, hotTail: 10_000, warmMessages: 20_000, segmentMessages: 1_000, pagesPerPosition: 100, ownRuntime: true, settleTimeoutMs: 3_600_000 },
      },
      s7: { conversations: 1000, requests: 200, warmup: 20 },
      // ~3.5 min: 4 cases x 3 systems x (8 x 1.2 s + 40 x 150 ms + quiet + drain).
      s8: { cases: ["direct", "20", "100", "1000"], gaps: [{ gapMs: 1200, messages: 8 }, { gapMs: 150, messages: 40 }], warmup: 1, quietMs: 1200, deadlineMs: 10_000 },
      s9: { smallBytes: 10_000_000, largeBytes: 100_000_000, reps: 3, partConcurrency: 4, refuseDeclaredBytes: 1_000_000_000, refuseRequests: 10, sampleEveryMs: 100, ownRuntime: true },
    };
  }
  if (mode === "quick") {
    return {
      mode,
      bodyBytes,
      s1: { ratePerSec: 100, messages: 500, warmup: 50 },
      s2: { senders: 10, seconds: 3, warmupSeconds: 0.5, windowPerSender: 10, batchSize: 50, batchWindowPerSender: 2 },
      s3: { sizes: [100, 1000], messages: 10, warmup: 1, gapMs: 50 },
      s4: { conversations: 200, socketsPerConversation: 10, users: 200, probeMessages: 200, probeRatePerSec: 100, settleMs: 1500 },
      s5: { clients: 1000, missed: 100, before: 10 },
      // cold 1-15,000, warm 15,001-18,000, hot 18,001-20,000; the large conversation is 100,000 messages here, not
      // 1,000,000: cold 1-80,000, warm 80,001-90,000, hot 90,001-100,000.
      s6: {
        messages: 20_000,
        hotTail: 2_000,
        warmMessages: 5_000,
        segmentMessages: 1_000,
        batchSize: 50,
        requests: 300,
        warmup: 20,
        large: { messages: 100_000, hotTail: 10_000, warmMessages: 20_000, segmentMessages: 1_000, pagesPerPosition: 20, ownRuntime: true, settleTimeoutMs: 600_000 },
      },
      s7: { conversations: 100, requests: 100, warmup: 10 },
      s8: { cases: ["direct", "20", "100"], gaps: [{ gapMs: 1200, messages: 4 }, { gapMs: 150, messages: 20 }], warmup: 1, quietMs: 1200, deadlineMs: 10_000 },
      // 30 MB: still three multipart parts, a third of the full run's bytes.
      s9: { smallBytes: 10_000_000, largeBytes: 30_000_000, reps: 2, partConcurrency: 4, refuseDeclaredBytes: 1_000_000_000, refuseRequests: 5, sampleEveryMs: 100, ownRuntime: true },
    };
  }
  return {
    mode,
    bodyBytes,
    s1: { ratePerSec: 100, messages: 20, warmup: 0 },
    s2: { senders: 3, seconds: 0.3, warmupSeconds: 0, windowPerSender: 4, batchSize: 5, batchWindowPerSender: 2 },
    s3: { sizes: [5], messages: 2, warmup: 0, gapMs: 10 },
    s4: { conversations: 3, socketsPerConversation: 3, users: 6, probeMessages: 10, probeRatePerSec: 100, settleMs: 200 },
    s5: { clients: 5, missed: 12, before: 3 },
    // cold 1-200 (4 segments of 50), warm 201-300, hot 301-400; the "large" one (600) on the main runtime.
    s6: {
      messages: 400,
      hotTail: 100,
      warmMessages: 200,
      segmentMessages: 50,
      batchSize: 50,
      requests: 10,
      warmup: 2,
      large: { messages: 600, hotTail: 100, warmMessages: 200, segmentMessages: 50, pagesPerPosition: 2, ownRuntime: false, settleTimeoutMs: 60_000 },
    },
    s7: { conversations: 3, requests: 5, warmup: 1 },
    // A few seconds: proves every notification is counted and checked, not how fast it is.
    s8: { cases: ["direct", "20"], gaps: [{ gapMs: 100, messages: 3 }], warmup: 0, quietMs: 0, deadlineMs: 5_000 },
    // 11 MB: the smallest file with two multipart parts (10 MiB each).
    s9: { smallBytes: 1_000_000, largeBytes: 11_000_000, reps: 1, partConcurrency: 4, refuseDeclaredBytes: 1_000_000_000, refuseRequests: 2, sampleEveryMs: 100, ownRuntime: false },
  };
}
