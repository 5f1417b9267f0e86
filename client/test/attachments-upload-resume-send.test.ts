// Attachments through the SDK against the real server (workerd with the local R2 binding): a small image
// in one request, a two-part multipart upload with progress, resuming it after a part's request really
// dropped, messages carrying attachments received and downloaded by the other member, and a file sent
// while offline that is uploaded, then sent, when the network returns.
import { beforeAll, expect, it } from "vitest";
import type { LocalServer } from "../../e2e/server.ts";
import { useLocalServer } from "../../e2e/use-server.ts";
import { ChatClient, MULTIPART_PART_BYTES, MemoryOutboxStorage, UploadError, type ChatMessage, type FetchLike, type UploadProgress } from "../src/index";
import { Network, until } from "./net";

const local = useLocalServer();
let server: LocalServer;
beforeAll(() => {
  server = local.current;
});

const PASSWORD = "correct horse battery";
// A real 1x1 PNG (the server checks the bytes of inline image types).
const PNG = Uint8Array.from(
  atob("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="),
  (c) => c.charCodeAt(0),
);

async function user(name: string, net: Network, fetchImpl?: FetchLike) {
  const client = new ChatClient({
    baseUrl: server.url,
    WebSocket: net.WebSocket,
    storage: new MemoryOutboxStorage(),
    backoff: { baseMs: 20, capMs: 200 },
    uploads: { retry: { attempts: 2, baseMs: 20, capMs: 100 } },
    fetch: fetchImpl ?? ((input, init) => (net.up ? fetch(input, init) : Promise.reject(new TypeError("network down")))),
  });
  await client.auth.signup(name, PASSWORD);
  return client;
}

const bytesOf = async (res: Response) => new Uint8Array(await res.arrayBuffer());

it("uploads an image in one request and a large file in parts, with progress, and resumes after a dropped part", async () => {
  const sfx = Date.now().toString(36);
  const net = new Network();
  const partsSent: number[] = [];
  let dropPart: number | null = null;
  // The first request of `dropPart` is really sent and really cut off after 1 ms (its answer, if any, is lost).
  const fetchImpl: FetchLike = async (input, init) => {
    const m = /\/parts\/(\d+)$/.exec(input);
    if (m && init?.method === "PUT") {
      const n = Number(m[1]);
      partsSent.push(n);
      if (dropPart === n) {
        dropPart = null;
        const ac = new AbortController();
        const req = fetch(input, { ...init, signal: ac.signal });
        setTimeout(() => ac.abort(), 1);
        await req.then((r) => r.body?.cancel()).catch(() => undefined);
        throw new TypeError("connection dropped");
      }
    }
    return fetch(input, init);
  };
  const alice = await user(`alice_${sfx}`, net, fetchImpl);
  await user(`bob_${sfx}`, net);
  const dm = await alice.createDirectByUsername(`bob_${sfx}`);

  const small: UploadProgress[] = [];
  const png = await alice.upload(dm.id, new Blob([PNG], { type: "image/png" }), { name: "dot ü.png", width: 1, height: 1, onProgress: (p) => small.push(p) });
  expect(png).toMatchObject({ name: "dot ü.png", size: PNG.length, contentType: "image/png", width: 1, height: 1, state: "ready" });
  expect(small).toEqual([{ loaded: 0, total: PNG.length }, { loaded: PNG.length, total: PNG.length }]);
  expect(await bytesOf(await alice.download(png.id))).toEqual(PNG);

  // 10 MiB + 1 byte: two parts. No retries for this call, so the dropped part fails the upload.
  const big = new Uint8Array(MULTIPART_PART_BYTES + 1);
  for (let i = 0; i < big.length; i += 4096) big[i] = (i / 4096) & 0xff;
  big[big.length - 1] = 0x7f;
  const progress: UploadProgress[] = [];
  dropPart = 1;
  const strict = new ChatClient({ baseUrl: server.url, fetch: fetchImpl, session: alice.auth.session, uploads: { retry: { attempts: 1 } } });
  const failed = await strict.upload(dm.id, big, { name: "big.bin", contentType: "application/octet-stream", multipart: true, onProgress: (p) => progress.push(p) }).catch((e: unknown) => e);
  expect(failed).toBeInstanceOf(UploadError);
  const err = failed as UploadError;
  expect(err.code).toBe("network_error");
  expect(err.resumable).toBe(true);
  expect(strict.uploads.multipart.get(err.attachmentId!)?.etags.size).toBe(1); // part 2 was answered
  expect(partsSent.sort()).toEqual([1, 2]);

  partsSent.length = 0;
  const done = await strict.resumeUpload(err.attachmentId!, big, { onProgress: (p) => progress.push(p) });
  expect(partsSent).toEqual([1]); // only the part without an answer
  expect(done).toMatchObject({ id: err.attachmentId, size: big.length, state: "ready" });
  expect(strict.uploads.multipart.has(done.id)).toBe(false);
  // Progress never goes back and ends at the total.
  const loaded = progress.map((p) => p.loaded);
  expect([...loaded].sort((a, b) => a - b)).toEqual(loaded);
  expect(progress.at(-1)).toEqual({ loaded: big.length, total: big.length });
  expect(progress.every((p) => p.total === big.length)).toBe(true);
  const tail = await bytesOf(await alice.download(done.id, { range: { start: MULTIPART_PART_BYTES - 1 } }));
  expect(tail).toEqual(big.subarray(MULTIPART_PART_BYTES - 1));

  // A retryable drop with retries on: the same part is sent again and the upload completes on its own.
  partsSent.length = 0;
  dropPart = 2;
  const again = await alice.upload(dm.id, big, { name: "big2.bin", multipart: true });
  expect(partsSent.filter((n) => n === 2)).toHaveLength(2);
  expect(again.size).toBe(big.length);

  // Taken back: gone.
  await alice.deleteUpload(again.id);
  await expect(alice.download(again.id)).rejects.toMatchObject({ code: "not_found" });
  alice.close();
  strict.close();
});

it("sends messages with attachments through the outbox; the other member receives and downloads them, also after an offline send", async () => {
  const sfx = Date.now().toString(36);
  const aliceNet = new Network();
  const bobNet = new Network();
  const alice = await user(`alice_${sfx}`, aliceNet);
  const bob = await user(`bob_${sfx}`, bobNet);
  const dm = await alice.createDirectByUsername(`bob_${sfx}`);
  const a = await alice.open(dm.id);
  const b = await bob.open(dm.id);
  await until(() => a.state === "open" && b.state === "open", 10_000, "both open");
  const bobGot: ChatMessage[] = [];
  b.on("message", (m) => bobGot.push(m));

  // Uploaded first, then referenced by its attachment object.
  const png = await alice.upload(dm.id, PNG, { name: "dot.png", contentType: "image/png", width: 1, height: 1 });
  await a.send("look", { attachments: [png] });
  await until(() => bobGot.length === 1, 10_000, "bob gets the image");
  expect(bobGot[0]!.body).toBe("look");
  expect(bobGot[0]!.attachments).toEqual([{ id: png.id, name: "dot.png", size: PNG.length, contentType: "image/png", width: 1, height: 1 }]);
  expect(await bytesOf(await bob.download(png.id))).toEqual(PNG);
  const url = await bob.attachmentUrl(png.id);
  expect(await bob.attachmentUrl(png.id)).toBe(url); // cached
  expect(await bytesOf(await fetch(url.url))).toEqual(PNG); // no header needed

  // Offline: a file and a message after it wait; back online, the file is uploaded, then both are sent, in order.
  aliceNet.cut();
  await until(() => a.state !== "open", 5_000, "alice notices");
  const text = new TextEncoder().encode("written in a tunnel\n");
  const withFile = await a.send("", { attachments: [{ file: text, name: "notes.txt", contentType: "text/plain" }] });
  const after = await a.send("and this comes after the file");
  await new Promise((r) => setTimeout(r, 400));
  expect(bobGot).toHaveLength(1);
  expect(a.pending.map((i) => i.clientMsgId)).toEqual([withFile.clientMsgId, after.clientMsgId]);
  aliceNet.restore();
  await until(() => bobGot.length === 3 && a.pending.length === 0, 20_000, "offline sends delivered");
  expect(bobGot[1]!.clientMsgId).toBe(withFile.clientMsgId);
  expect(bobGot[1]!.body).toBe("");
  expect(bobGot[1]!.attachments).toMatchObject([{ name: "notes.txt", size: text.length, contentType: "text/plain" }]);
  expect(bobGot[2]!.body).toBe("and this comes after the file");
  expect(await bytesOf(await bob.download(bobGot[1]!.attachments![0]!.id))).toEqual(text);

  // An attachment already used by another message is final: the message fails, the outbox goes on.
  const reused = await a.send("again", { attachments: [png.id] });
  await until(() => a.failed.has(reused.clientMsgId), 10_000, "reuse refused");
  expect(a.failed.get(reused.clientMsgId)!.error.code).toBe("attachment_unavailable");
  expect(a.pending).toEqual([]);
  alice.close();
  bob.close();
});

it("a multipart upload of a queued message survives a reload: the new client sends only the parts that had no answer", async () => {
  const sfx = Date.now().toString(36);
  const net = new Network();
  const storage = new MemoryOutboxStorage(); // stands for IndexedDB: what a reload keeps
  const partsSent: number[] = [];
  let refusePart2 = true;
  const fetchImpl: FetchLike = async (input, init) => {
    const m = /\/parts\/(\d+)$/.exec(input);
    if (m && init?.method === "PUT") {
      partsSent.push(Number(m[1]));
      if (refusePart2 && m[1] === "2") throw new TypeError("connection dropped"); // the tab is closing
    }
    return fetch(input, init);
  };
  const alice = new ChatClient({ baseUrl: server.url, WebSocket: net.WebSocket, storage, fetch: fetchImpl, backoff: { baseMs: 5_000, capMs: 5_000 }, uploads: { retry: { attempts: 1 }, partConcurrency: 1 } });
  await alice.auth.signup(`alice_${sfx}`, PASSWORD);
  const bob = await user(`bob_${sfx}`, new Network());
  const dm = await alice.createDirectByUsername(`bob_${sfx}`);
  const big = new Uint8Array(MULTIPART_PART_BYTES + 5);
  big[0] = 1;
  big[big.length - 1] = 2;
  const a = await alice.open(dm.id);
  const sent = await a.send("the big file", { attachments: [{ file: new Blob([big]), name: "big.bin", contentType: "application/octet-stream" }] });
  // Part 1 answered, part 2 dropped: the slot in the stored outbox holds the upload and part 1's etag.
  let stored: unknown[] = [];
  await until(() => {
    void storage.getAll().then((all) => (stored = all));
    const slot = (stored[0] as { attachments?: { multipart?: { etags: unknown[] } }[] } | undefined)?.attachments?.[0];
    return slot?.multipart?.etags.length === 1 && partsSent.includes(2);
  }, 10_000, "part 1 recorded in the outbox, part 2 dropped");
  await new Promise((r) => setTimeout(r, 50)); // the drop reaches the upload loop, which waits (backoff 5 s)
  alice.close(); // the reload: this client and its memory are gone

  refusePart2 = false;
  partsSent.length = 0;
  const again = new ChatClient({ baseUrl: server.url, WebSocket: net.WebSocket, storage, fetch: fetchImpl, session: alice.auth.session, backoff: { baseMs: 20, capMs: 200 } });
  const b = await bob.open(dm.id);
  const got: ChatMessage[] = [];
  b.on("message", (m) => got.push(m));
  const progress: number[] = [];
  const a2 = await again.open(dm.id);
  a2.on("uploadProgress", (p) => progress.push(p.loaded));
  await until(() => got.length === 1, 20_000, "bob gets the message");
  expect(partsSent).toEqual([2]); // part 1 was not sent again
  expect(got[0]!.clientMsgId).toBe(sent.clientMsgId);
  expect(got[0]!.attachments).toMatchObject([{ name: "big.bin", size: big.length }]);
  // Resumed from part 1's bytes, never from 0 (the first report may come before this listener is attached).
  expect(progress.length).toBeGreaterThan(0);
  expect(progress.every((p) => p >= MULTIPART_PART_BYTES)).toBe(true);
  expect(progress.at(-1)).toBe(big.length);
  const bytes = await bytesOf(await bob.download(got[0]!.attachments![0]!.id));
  expect(bytes.length).toBe(big.length);
  expect([bytes[0], bytes[bytes.length - 1]]).toEqual([1, 2]);
  again.close();
  bob.close();
});
