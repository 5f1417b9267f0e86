// Property-based fuzzing of every REST body (and the path and query parameters next to them):
// thousands of generated requests, valid and hostile. For every request:
//   - no 5xx; every error is `{ error: { code, message } }` with a documented code and its own status;
//   - a rejected request changes nothing (checked per route: users, conversations, members, messages);
//   - no prototype pollution in the isolate.
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { env } from "cloudflare:test";
import { api, createGroup, mintUser, type TestUser } from "./helpers";
import { SCALE, assertPrototypesClean, assertWellFormedAnswer, describeCase, fuzzParams, hugeString, nastyNumber, nastyString, nastyValue, pollutedObject, rawFetch, withExtras, type RawResponse } from "./fuzz-helpers";

const BATCH = 40;
const RUNS = 110 * SCALE; // 4,400 requests
const CONCURRENCY = 10;

let owner: TestUser;
let members: TestUser[];
let conversationId: string;

beforeAll(async () => {
  owner = await mintUser();
  members = await Promise.all([mintUser(), mintUser(), mintUser()]);
  conversationId = (await createGroup(owner, members.slice(0, 1))).id;
});

// ---------------------------------------------------------------- generators

/** encodeURIComponent throws on lone surrogates: send U+FFFD in their place (what UTF-8 would carry anyway). */
const enc = (s: string) => encodeURIComponent(s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD"));

const knownUserId = () => fc.constantFrom(...members.map((m) => m.id), owner.id);
const userIdLike = () => fc.oneof({ weight: 3, arbitrary: knownUserId() }, { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,70}$/) }, { weight: 2, arbitrary: nastyString() }, { weight: 1, arbitrary: nastyValue() });
const usernameLike = () => fc.oneof(fc.stringMatching(/^[a-zA-Z0-9_.-]{1,40}$/), nastyString(), nastyValue());
const passwordLike = () => fc.oneof(fc.string({ minLength: 0, maxLength: 20 }), nastyString(), hugeString(), nastyValue());

/** A body around a route's schema: valid-looking fields, wrong types, extra and pollution keys. */
function around(fields: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<unknown> {
  const record = fc.record(fields, { requiredKeys: [] });
  return fc.oneof(
    { weight: 6, arbitrary: fc.tuple(record, fc.option(pollutedObject(), { nil: undefined, freq: 3 }), fc.boolean()).map(([r, extra, override]) => (extra ? withExtras(r as Record<string, unknown>, extra, override) : r)) },
    { weight: 1, arbitrary: nastyValue() },
    { weight: 1, arbitrary: pollutedObject() },
  );
}

/** How the body travels: JSON of the value, or junk text, invalid UTF-8, truncated JSON, a huge body, nothing. */
function encode(value: fc.Arbitrary<unknown>): fc.Arbitrary<string | Uint8Array | undefined> {
  return fc.oneof(
    { weight: 12, arbitrary: value.map((v) => JSON.stringify(v) ?? "null") },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 60 }) },
    { weight: 1, arbitrary: value.chain((v) => { const s = JSON.stringify(v) ?? ""; return fc.nat({ max: s.length }).map((n) => s.slice(0, n)); }) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 40 }).map((b) => Uint8Array.from([0x7b, 0x22, 0xff, 0xfe, ...b])) },
    { weight: 1, arbitrary: hugeString().map((s) => JSON.stringify({ body: s, title: s, username: s })) },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
}

/** Path segments: the real conversation mostly, else hostile ids, including malformed %-escapes. */
const conversationSegment = () =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constant("$conv") },
    { weight: 1, arbitrary: nastyString().map(enc) },
    { weight: 1, arbitrary: fc.constantFrom("%", "%zz", "%E0%A4%A", "%2e%2e", "..", "%00", "g_" + "a".repeat(70), "%F0%9F%98") },
  );
const userSegment = () =>
  fc.oneof(
    { weight: 3, arbitrary: knownUserId() },
    { weight: 2, arbitrary: nastyString().map(enc) },
    { weight: 1, arbitrary: fc.constantFrom("%", "%zz", "%E0%A4%A", "%00", "x".repeat(65)) },
  );
const queryValue = () => fc.oneof(fc.nat().map(String), nastyNumber().map(String), nastyString().map(enc), fc.constantFrom("%", "%zz", "1e3", "0x10", "-0", "", "9".repeat(20)));

type Route =
  | "signup"
  | "login"
  | "refresh"
  | "admin_tokens"
  | "create"
  | "add_members"
  | "set_role"
  | "post_message"
  | "history"
  | "user_lookup"
  | "remove_member"
  | "post_receipts"
  | "get_receipts"
  | "inbox"
  | "presence";

interface Case {
  route: Route;
  method: string;
  path: string;
  body?: string | Uint8Array;
  auth: "owner" | "admin" | "member";
  contentType: string;
  /** CF-Connecting-IP: signup/login/refresh share a per-IP budget of 20 a minute; most cases get their own address. */
  ip: string;
}

const contentType = () => fc.oneof({ weight: 8, arbitrary: fc.constant("application/json") }, { weight: 1, arbitrary: fc.constantFrom("text/plain", "", "application/x-www-form-urlencoded", "application/json; charset=latin1") });

function caseOf(route: Route, method: string, path: fc.Arbitrary<string>, body: fc.Arbitrary<string | Uint8Array | undefined> | null, auth: Case["auth"] = "owner"): fc.Arbitrary<Case> {
  const ip = fc.oneof({ weight: 9, arbitrary: fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255)).map(([a, b, c]) => `10.${a}.${b}.${c}`) }, { weight: 1, arbitrary: fc.constant("192.0.2.1") });
  return fc
    .record({ path, body: body ?? fc.constant(undefined), contentType: contentType(), ip })
    .map(({ path, body, contentType, ip }) => ({ route, method, path, body, auth, contentType, ip }));
}

const conv = (rest = "") => conversationSegment().map((c) => `/v1/conversations/${c}${rest}`);

const requestCase = (): fc.Arbitrary<Case> =>
  fc.oneof(
    // Signup and login hash passwords (PBKDF2): few cases, or they would dominate the run time.
    { weight: 1, arbitrary: caseOf("signup", "POST", fc.constant("/v1/auth/signup"), encode(around({ username: usernameLike(), password: passwordLike() }))) },
    { weight: 1, arbitrary: caseOf("login", "POST", fc.constant("/v1/auth/login"), encode(around({ username: usernameLike(), password: passwordLike() }))) },
    { weight: 3, arbitrary: caseOf("refresh", "POST", fc.constant("/v1/auth/refresh"), encode(around({ refreshToken: fc.oneof(nastyString(), hugeString(), nastyValue()) }))) },
    { weight: 4, arbitrary: caseOf("admin_tokens", "POST", fc.constant("/v1/admin/tokens"), encode(around({ userId: userIdLike(), username: usernameLike() })), "admin") },
    {
      weight: 6,
      arbitrary: caseOf(
        "create",
        "POST",
        fc.constant("/v1/conversations"),
        encode(
          fc.oneof(
            around({ type: fc.constantFrom("group", "direct", "GROUP", "channel"), title: fc.oneof(nastyString(), hugeString(), nastyValue()), memberIds: fc.oneof(fc.array(userIdLike(), { maxLength: 5 }), nastyValue()) }),
            around({ type: fc.constant("direct"), userId: userIdLike() }),
          ),
        ),
      ),
    },
    { weight: 6, arbitrary: caseOf("add_members", "POST", conv("/members"), encode(around({ userIds: fc.oneof(fc.array(userIdLike(), { maxLength: 4 }), nastyValue()) }))) },
    { weight: 5, arbitrary: fc.tuple(conv("/members/"), userSegment()).chain(([p, u]) => caseOf("set_role", "PATCH", fc.constant(p + u), encode(around({ role: fc.oneof(fc.constantFrom("admin", "member", "owner", "ADMIN"), nastyValue()) })))) },
    { weight: 10, arbitrary: caseOf("post_message", "POST", conv("/messages"), encode(around({ clientMsgId: fc.oneof(fc.stringMatching(/^[A-Za-z0-9_.:-]{1,10}$/), nastyString(), nastyValue()), body: fc.oneof(fc.string({ minLength: 1, maxLength: 30 }), nastyString(), hugeString(), nastyValue()) }))) },
    {
      weight: 6,
      arbitrary: caseOf(
        "history",
        "GET",
        fc.tuple(conv("/messages"), fc.array(fc.tuple(fc.constantFrom("before", "after", "limit", "__proto__", "constructor", "x"), queryValue()), { maxLength: 3 })).map(
          ([p, q]) => `${p}${q.length ? "?" : ""}${q.map(([k, v]) => `${k}=${v}`).join("&")}`,
        ),
        null,
        "member",
      ),
    },
    { weight: 2, arbitrary: caseOf("user_lookup", "GET", fc.oneof(usernameLike().map((u) => `/v1/users?username=${enc(String(u))}`), fc.constantFrom("/v1/users", "/v1/users?username=%", "/v1/users?username=a&username=b")), null, "member") },
    { weight: 3, arbitrary: caseOf("post_receipts", "POST", conv("/receipts"), encode(around({ delivered: fc.oneof(nastyNumber(), nastyValue()), read: fc.oneof(nastyNumber(), nastyValue()) })), "member") },
    { weight: 2, arbitrary: fc.tuple(conv("/receipts"), fc.option(queryValue(), { nil: undefined })).chain(([p, q]) => caseOf("get_receipts", "GET", fc.constant(q === undefined ? p : `${p}?seq=${q}`), null, "member")) },
    {
      weight: 2,
      arbitrary: caseOf(
        "inbox",
        "GET",
        fc.array(fc.tuple(fc.constantFrom("cursor", "limit", "__proto__"), queryValue()), { maxLength: 2 }).map((q) => `/v1/me/conversations${q.length ? "?" : ""}${q.map(([k, v]) => `${k}=${v}`).join("&")}`),
        null,
        "member",
      ),
    },
    { weight: 2, arbitrary: userSegment().chain((u) => caseOf("presence", "GET", fc.constant(`/v1/users/${u}/presence`), null, "member")) },
    // Only hostile or non-member targets: removing a real member would be a legitimate state change.
    { weight: 2, arbitrary: fc.tuple(conv("/members/"), fc.oneof(nastyString().map(enc), fc.constantFrom("%", "%zz", "u_nobody"))).chain(([p, u]) => caseOf("remove_member", "DELETE", fc.constant(p + u), null, "member")) },
  );

// ---------------------------------------------------------------- state probes

async function d1Count(sql: string, ...params: unknown[]): Promise<number> {
  return (await env.DB.prepare(sql).bind(...params).first<{ n: number }>())!.n;
}

async function snapshot() {
  const r = await api("GET", `/v1/conversations/${conversationId}`, { token: owner.token });
  const c = r.body.conversation as { lastSeq: number; members: { userId: string; role: string }[] };
  return {
    lastSeq: c.lastSeq,
    members: c.members.map((m) => `${m.userId}:${m.role}`).sort(),
    users: await d1Count("SELECT count(*) AS n FROM users"),
    ownedConversations: await d1Count("SELECT count(*) AS n FROM conversations WHERE created_by = ?", owner.id),
  };
}

// ---------------------------------------------------------------- the property

const tally = new Map<string, number>();

let requests = 0;

async function run(c: Case): Promise<RawResponse> {
  const token = c.auth === "admin" ? env.ADMIN_SECRET : c.auth === "member" ? members[0]!.token : owner.token;
  const path = c.path.replaceAll("$conv", conversationId);
  const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
  headers["Content-Type"] = c.contentType;
  headers["CF-Connecting-IP"] = c.ip;
  return rawFetch(c.method, path, { body: c.method === "GET" || c.method === "DELETE" ? undefined : c.body, headers });
}

describe("REST fuzzing", () => {
  it(`${RUNS * BATCH} generated requests: no 5xx, documented errors only, no state change from rejected requests`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(requestCase(), { minLength: BATCH, maxLength: BATCH }), async (cases) => {
        const before = await snapshot();
        const results: RawResponse[] = new Array(cases.length);
        for (let i = 0; i < cases.length; i += CONCURRENCY) {
          await Promise.all(cases.slice(i, i + CONCURRENCY).map(async (c, j) => {
            let timer: ReturnType<typeof setTimeout> | null = null;
            results[i + j] = await Promise.race([
              run(c),
              new Promise<never>((_, reject) => {
                timer = setTimeout(() => reject(new Error(`no answer within 10 s: ${c.method} ${c.path} ${c.body instanceof Uint8Array ? "<bytes>" : describeCase(c.body)}`)), 10_000);
              }),
            ]).finally(() => timer !== null && clearTimeout(timer));
          }));
        }
        const accepted = new Map<Route, number>();
        cases.forEach((c, i) => {
          const r = results[i]!;
          const what = `${c.method} ${c.path} ${c.body instanceof Uint8Array ? `<${c.body.length} raw bytes>` : describeCase(c.body)}`;
          assertWellFormedAnswer(r, what);
          const key = `${c.route} ${r.status}`;
          tally.set(key, (tally.get(key) ?? 0) + 1);
          if (r.status < 300) accepted.set(c.route, (accepted.get(c.route) ?? 0) + 1);
        });
        requests += cases.length;

        // Rejected requests changed nothing: every change is accounted for by an accepted one.
        const after = await snapshot();
        // 201 = stored; 200 = a resend of a clientMsgId already stored (no change).
        const newMessages = results.filter((r, i) => cases[i]!.path === "/v1/conversations/$conv/messages" && r.status === 201).length;
        expect(after.lastSeq - before.lastSeq, "lastSeq moves only by accepted sends").toBe(newMessages);
        if (!accepted.get("add_members") && !accepted.get("set_role") && !accepted.get("remove_member")) expect(after.members).toEqual(before.members);
        expect(after.ownedConversations - before.ownedConversations).toBeLessThanOrEqual(accepted.get("create") ?? 0);
        expect(after.users - before.users).toBeLessThanOrEqual((accepted.get("signup") ?? 0) + (accepted.get("admin_tokens") ?? 0));
        assertPrototypesClean();
      }),
      fuzzParams(RUNS),
    );
    expect(requests).toBe(RUNS * BATCH);
    // Both sides of every route were exercised: some accepted, some rejected (else the generators are too timid or too wild).
    for (const route of ["admin_tokens", "create", "add_members", "set_role", "post_message", "history", "user_lookup", "post_receipts", "get_receipts", "inbox", "presence"] as Route[]) {
      const statuses = [...tally].filter(([k]) => k.startsWith(`${route} `));
      expect(statuses.some(([k]) => Number(k.split(" ")[1]) < 300), `${route} accepted something: ${JSON.stringify(statuses)}`).toBe(true);
      expect(statuses.some(([k]) => Number(k.split(" ")[1]) >= 400), `${route} rejected something`).toBe(true);
    }
  }, 120_000);

  it("oversized bodies are refused before they are read in full (declared and streamed)", async () => {
    const big = "x".repeat(200 * 1024);
    const declared = await rawFetch("POST", `/v1/conversations/${conversationId}/messages`, { token: owner.token, body: big, headers: { "Content-Length": String(big.length) } });
    expect(declared.status).toBe(413);
    assertWellFormedAnswer(declared, "declared");
    // A body with no Content-Length (a stream) is cut off at the cap.
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 50; i++) controller.enqueue(new TextEncoder().encode("y".repeat(8192)));
        controller.close();
      },
    });
    const streamed = await rawFetch("POST", `/v1/conversations/${conversationId}/messages`, { token: owner.token, body: stream });
    expect(streamed.status).toBe(413);
    expect((streamed.json as { error: { code: string } }).error.code).toBe("payload_too_large");
  });
});

describe("group titles", () => {
  // Was a bug (title-lone-surrogate): "a\uD800b" was accepted and came back mangled (SQLite stores UTF-8).
  it("a group title with a lone surrogate is refused like a message body (400 validation_failed)", async () => {
    const r = await rawFetch("POST", "/v1/conversations", { token: owner.token, body: JSON.stringify({ type: "group", title: "a\uD800b" }) });
    expect(r.status).toBe(400);
    expect((r.json as { error: { code: string } }).error.code).toBe("validation_failed");
  });
});
