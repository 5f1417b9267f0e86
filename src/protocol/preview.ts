// The one-line text of a message: the inbox preview (12.2) and a reply's quote of its parent (15.4). Shared by
// the server and the clients, so a client following a parent's edits computes exactly the server's quote.

/** Longest preview or quote, in code points. */
export const PREVIEW_MAX_CHARS = 140;

/**
 * Every run of whitespace made one space and trimmed, cut to 139 code points plus `…` when longer than 140 (on
 * code points, so an emoji is never split); with no text, `📎 <first file's name>` and ` +N` for more files.
 */
export function previewText(body: string, attachments?: ReadonlyArray<{ name: string }>): string {
  const files = attachments ?? [];
  const text = body.trim() === "" && files.length > 0 ? `📎 ${files[0]!.name}${files.length > 1 ? ` +${files.length - 1}` : ""}` : body;
  const chars = Array.from(text.replace(/\s+/g, " ").trim());
  return chars.length > PREVIEW_MAX_CHARS ? `${chars.slice(0, PREVIEW_MAX_CHARS - 1).join("")}…` : chars.join("");
}
