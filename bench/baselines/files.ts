// Baseline for scenario 9 (attachments): a plain Node `http` file server in its own process (never in
// the load generator's event loop, like the relays), 127.0.0.1 only. It does what a durable store must
// and nothing else: no auth, no metadata, no checks beyond the declared size.
//
//   POST   /files                       body = the file (Content-Length required) -> 201 {id, size}
//   POST   /files/multipart             {size} -> 201 {id, partSize, partCount} (the file is created at its size)
//   PUT    /files/:id/parts/:n          body = bytes (n-1)*partSize.. of the file -> 200 {partNumber, etag}
//   POST   /files/:id/complete          -> 200 {id, size}
//   GET    /files/:id                   -> 200, the bytes (Content-Length)
//   DELETE /files/:id                   -> 204
//
// Durability: an upload (or a part) is answered only after the stream to disk has finished
// (`fs.createWriteStream`, 'finish') AND the file was fsynced (the stream's `flush: true`: fsync before
// close) and closed, so an answered upload is on disk, as a durable store's answer would mean. Downloads: `fs.createReadStream`
// piped to the response. Files live in a temp dir under os.tmpdir() (the same disk as the runtime's
// storage), removed on exit.
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from "node:fs";
import { open, stat, unlink } from "node:fs/promises";
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";

/** Same part size as edgechat's multipart uploads (10 MiB). */
export const PART_BYTES = 10 * 1024 * 1024;

const dir = mkdtempSync(join(tmpdir(), "edgechat-bench-files-"));
const sizes = new Map<string, number>();
let next = 0;

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

function declared(req: IncomingMessage): number | null {
  const h = req.headers["content-length"];
  return h && /^\d+$/.test(h) ? Number(h) : null;
}

/**
 * Stream the request body into `path` at `offset`; resolves once the stream has finished AND the file
 * was fsynced and closed (`flush: true`: fsync before close); returns the bytes written.
 */
async function receive(req: IncomingMessage, path: string, offset: number, flags: "w" | "r+"): Promise<number> {
  const ws = createWriteStream(path, { flags, start: offset, flush: true });
  await pipeline(req, ws);
  if (!ws.closed) await once(ws, "close");
  return ws.bytesWritten;
}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://x");
  const parts = url.pathname.split("/").filter(Boolean); // ["files", id?, "parts"?, n?]
  if (parts[0] !== "files") return json(res, 404, { error: "not_found" });
  if (req.method === "POST" && parts.length === 1) {
    const size = declared(req);
    if (size === null) return json(res, 411, { error: "length_required" });
    const id = `f${++next}`;
    const written = await receive(req, join(dir, id), 0, "w");
    if (written !== size) return json(res, 400, { error: "short body", written });
    sizes.set(id, size);
    return json(res, 201, { id, size });
  }
  if (req.method === "POST" && parts[1] === "multipart" && parts.length === 2) {
    const { size } = (await readJsonBody(req)) as { size: number };
    const id = `f${++next}`;
    const h = await open(join(dir, id), "w");
    await h.truncate(size);
    await h.close();
    sizes.set(id, size);
    return json(res, 201, { id, partSize: PART_BYTES, partCount: Math.ceil(size / PART_BYTES) });
  }
  const id = parts[1] ?? "";
  const size = sizes.get(id);
  if (size === undefined) return json(res, 404, { error: "not_found" });
  const path = join(dir, id);
  if (req.method === "PUT" && parts[2] === "parts" && parts.length === 4) {
    const n = Number(parts[3]);
    const count = Math.ceil(size / PART_BYTES);
    const expected = n < count ? PART_BYTES : size - PART_BYTES * (count - 1);
    if (!Number.isInteger(n) || n < 1 || n > count || declared(req) !== expected) return json(res, 400, { error: "validation_failed" });
    const written = await receive(req, path, (n - 1) * PART_BYTES, "r+");
    if (written !== expected) return json(res, 400, { error: "short body", written });
    return json(res, 200, { partNumber: n, etag: `"${id}-${n}"` });
  }
  if (req.method === "POST" && parts[2] === "complete" && parts.length === 3) {
    await readJsonBody(req);
    return json(res, 200, { id, size: (await stat(path)).size });
  }
  if (req.method === "GET" && parts.length === 2) {
    res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": size });
    await pipeline(createReadStream(path), res);
    return;
  }
  if (req.method === "DELETE" && parts.length === 2) {
    sizes.delete(id);
    await unlink(path);
    res.writeHead(204).end();
    return;
  }
  return json(res, 404, { error: "not_found" });
}

const server = createServer((req, res) => {
  handle(req, res).catch((err: unknown) => {
    if (!res.headersSent) json(res, 500, { error: String(err) });
    else res.destroy();
  });
});
server.listen(0, "127.0.0.1", () => {
  const addr = server.address();
  process.send?.({ port: typeof addr === "object" && addr ? addr.port : 0 });
});
const cleanup = () => rmSync(dir, { recursive: true, force: true });
process.on("exit", cleanup);
process.on("disconnect", () => {
  server.close();
  process.exit(0);
});
