// What bytes are, by their first bytes (magic numbers), for the image types served inline. A declared
// type is trusted for display only when the bytes agree (checked on the stored object, routes/attachments.ts);
// everything else is served as a download.

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

/** Types never rendered by a browser from our origin, whatever the uploader declared (scripts, markup). */
const ACTIVE_TYPES = /^(text\/html|application\/xhtml\+xml|image\/svg\+xml|text\/xml|application\/xml|text\/javascript|application\/javascript|application\/x-shockwave-flash)$/;

/** The Content-Type a download is served with: the declared one, except active types, which become octet-stream. */
export function servedType(contentType: string): string {
  return ACTIVE_TYPES.test(contentType) ? "application/octet-stream" : contentType;
}
