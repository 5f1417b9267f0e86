// What bytes are, by their first bytes (magic numbers), for the image types served inline. A declared
// type is trusted for display only when the bytes agree; everything else is served as a download.

const SIGNATURES: Record<string, (b: Uint8Array) => boolean> = {
  "image/png": (b) => starts(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  "image/jpeg": (b) => starts(b, [0xff, 0xd8, 0xff]),
  "image/gif": (b) => ascii(b, 0, "GIF87a") || ascii(b, 0, "GIF89a"),
  "image/webp": (b) => ascii(b, 0, "RIFF") && ascii(b, 8, "WEBP"),
};

/** Bytes needed to check any signature above. */
export const SNIFF_BYTES = 12;

/** Whether `head` (the first bytes of the file) is what `contentType` says, for types we can check. Unknown types: true. */
export function bytesMatchType(contentType: string, head: Uint8Array): boolean {
  const check = SIGNATURES[contentType];
  return check ? check(head) : true;
}

function starts(b: Uint8Array, sig: number[]): boolean {
  return b.length >= sig.length && sig.every((x, i) => b[i] === x);
}

function ascii(b: Uint8Array, at: number, text: string): boolean {
  if (b.length < at + text.length) return false;
  for (let i = 0; i < text.length; i++) if (b[at + i] !== text.charCodeAt(i)) return false;
  return true;
}

/**
 * `body` as a stream of exactly `size` bytes (FixedLengthStream: R2 needs the length, and a body that is
 * shorter or longer fails the write), whose first bytes are checked against `contentType` as they pass:
 * a mismatch errors the stream, so nothing is stored. Nothing is buffered beyond the first chunk.
 */
export function checkedBody(
  body: ReadableStream<Uint8Array>,
  size: number,
  contentType: string | null,
): { stream: ReadableStream<Uint8Array>; mismatch: () => boolean } {
  let mismatch = false;
  let head = new Uint8Array(0);
  let checked = contentType === null || !(contentType in SIGNATURES);
  const check = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      if (!checked) {
        const joined = new Uint8Array(head.length + chunk.length);
        joined.set(head);
        joined.set(chunk, head.length);
        head = joined.subarray(0, SNIFF_BYTES);
        if (head.length >= SNIFF_BYTES || joined.length >= size) {
          if (!bytesMatchType(contentType!, head)) {
            mismatch = true;
            throw new Error(`the file's bytes are not ${contentType}`);
          }
          checked = true;
        }
      }
      controller.enqueue(chunk);
    },
  });
  const fixed = new FixedLengthStream(size);
  void body
    .pipeThrough(check)
    .pipeTo(fixed.writable)
    .catch(() => undefined); // the error reaches the reader of `fixed.readable` (R2), which fails the write
  return { stream: fixed.readable as ReadableStream<Uint8Array>, mismatch: () => mismatch };
}

/** Types never rendered by a browser from our origin, whatever the uploader declared (scripts, markup). */
const ACTIVE_TYPES = /^(text\/html|application\/xhtml\+xml|image\/svg\+xml|text\/xml|application\/xml|text\/javascript|application\/javascript|application\/x-shockwave-flash)$/;

/** The Content-Type a download is served with: the declared one, except active types, which become octet-stream. */
export function servedType(contentType: string): string {
  return ACTIVE_TYPES.test(contentType) ? "application/octet-stream" : contentType;
}
