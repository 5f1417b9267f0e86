// What a reaction is (docs/protocol.md 15.3): one emoji. Shared by the server's validation and the clients.
import * as v from "valibot";

/** Most bytes of UTF-8 one reaction may take (a family emoji with skin tones is about 25). */
export const MAX_REACTION_BYTES = 32;
/** Default most distinct reactions on one message (the server's MAX_REACTIONS_PER_MESSAGE may differ). */
export const DEFAULT_MAX_REACTIONS_PER_MESSAGE = 50;

const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });
/** Something that draws as an emoji: a pictograph, a flag's regional indicators, or a keycap. */
const EMOJI_PART = /[\p{Extended_Pictographic}\p{Regional_Indicator}\u20E3]/u;
/** Nothing invisible or layout-changing besides what emoji sequences use (ZWJ, variation selectors, tags). */
const FORBIDDEN = /[\p{Cc}\p{Zs}\p{Zl}\p{Zp}\u00AD\u200B-\u200C\u200E-\u200F\u202A-\u202E\u2060-\u2064\uFEFF]/u;

/** True when `s` is exactly one grapheme cluster, at most 32 bytes, that draws as an emoji. */
export function isReaction(s: string): boolean {
  if (s.length === 0 || new TextEncoder().encode(s).length > MAX_REACTION_BYTES) return false;
  if (FORBIDDEN.test(s) || !EMOJI_PART.test(s)) return false;
  let clusters = 0;
  for (const _ of segmenter.segment(s)) if (++clusters > 1) return false;
  return clusters === 1;
}

export const ReactionSchema = v.pipe(
  v.string("emoji must be a string"),
  v.check(isReaction, `emoji must be one emoji (one grapheme cluster of at most ${MAX_REACTION_BYTES} bytes)`),
);
