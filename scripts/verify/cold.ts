// The cold tier read directly: the R2 segments of a local run, opened from the server's persist directory with a
// second Miniflare (the same local R2 storage the server writes, read without going through the server). Each
// segment is gzip NDJSON, a line per archived row (src/objects/conversation/segments.ts).
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { Miniflare } from "miniflare";
import type { ArchivedColumns } from "./records.ts";

/** A row of a segment (the archived columns the checker compares, as D1 holds them) and the object it came from. */
export type ColdRow = ArchivedColumns & {
  /** Which segment object held it (two objects holding one seq is a violation). */
  key: string;
};

export interface ColdReader {
  /** Every row of every segment object of the conversation in R2 (replaced versions not yet deleted included). */
  rows(conversationId: string): Promise<ColdRow[]>;
  close(): Promise<void>;
}

export async function openColdReader(persistDir: string): Promise<ColdReader> {
  const mf = new Miniflare({
    modules: true,
    script: "export default { fetch() { return new Response(null, { status: 404 }); } }",
    r2Buckets: { HISTORY: "edgechat-history" },
    r2Persist: join(persistDir, "v3", "r2"),
  });
  const bucket = await mf.getR2Bucket("HISTORY");
  return {
    async rows(conversationId) {
      const out: ColdRow[] = [];
      let cursor: string | undefined;
      do {
        const page = await bucket.list({ prefix: `h/${conversationId}/`, cursor });
        for (const o of page.objects) {
          const object = await bucket.get(o.key);
          if (!object) continue; // deleted between list and get: a replaced version
          const text = gunzipSync(Buffer.from(await object.arrayBuffer())).toString("utf8");
          for (const line of text.split("\n")) if (line) out.push({ ...(JSON.parse(line) as Omit<ColdRow, "key">), key: o.key });
        }
        cursor = page.truncated ? page.cursor : undefined;
      } while (cursor);
      return out;
    },
    close: () => mf.dispose(),
  };
}
