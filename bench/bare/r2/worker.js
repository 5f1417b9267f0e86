// The bare comparison for scenario 9: a Worker that moves request bodies straight into the local R2
// bucket and back, with nothing else (no auth, no Durable Object, no checks, no stream in JS). The same
// routes as baselines/files.ts, so the harness drives it with the same client code. It runs on its own
// Miniflare runtime with the same R2 simulator as edgechat: edgechat minus this is edgechat's own cost.
const PART_BYTES = 10 * 1024 * 1024;
/** Open multipart uploads: key -> uploadId (one isolate locally; enough for a benchmark). */
const uploads = new Map();
let next = 0;

const json = (body, status = 200) => Response.json(body, { status });

export default {
  async fetch(request, env) {
    const parts = new URL(request.url).pathname.split("/").filter(Boolean); // ["files", id?, "parts"?, n?]
    if (parts[0] !== "files") return json({ error: "not_found" }, 404);
    if (request.method === "POST" && parts.length === 1) {
      const id = `f${++next}`;
      // request.body has a known length (Content-Length), which is what R2 needs.
      const object = await env.B.put(id, request.body);
      return json({ id, size: object.size }, 201);
    }
    if (request.method === "POST" && parts[1] === "multipart" && parts.length === 2) {
      const { size } = await request.json();
      const id = `f${++next}`;
      const upload = await env.B.createMultipartUpload(id);
      uploads.set(id, upload.uploadId);
      return json({ id, partSize: PART_BYTES, partCount: Math.ceil(size / PART_BYTES) }, 201);
    }
    const id = parts[1] ?? "";
    if (request.method === "PUT" && parts[2] === "parts" && parts.length === 4) {
      const part = await env.B.resumeMultipartUpload(id, uploads.get(id)).uploadPart(Number(parts[3]), request.body);
      return json({ partNumber: part.partNumber, etag: part.etag });
    }
    if (request.method === "POST" && parts[2] === "complete" && parts.length === 3) {
      const { parts: list } = await request.json();
      const object = await env.B.resumeMultipartUpload(id, uploads.get(id)).complete(list);
      uploads.delete(id);
      return json({ id, size: object.size });
    }
    if (request.method === "GET" && parts.length === 2) {
      const object = await env.B.get(id);
      if (!object) return json({ error: "not_found" }, 404);
      return new Response(object.body, { headers: { "Content-Type": "application/octet-stream", "Content-Length": String(object.size) } });
    }
    if (request.method === "DELETE" && parts.length === 2) {
      await env.B.delete(id);
      return new Response(null, { status: 204 });
    }
    return json({ error: "not_found" }, 404);
  },
};
