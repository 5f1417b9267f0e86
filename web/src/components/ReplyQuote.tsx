// The quote a reply shows of the message it replies to (a queued reply quotes the held parent), and
// showing that parent on a click: scrolled to and flashed in the list, or its thread opened.
import { quoteOf, type ChatMessage, type OutboxItem } from "../../../client/src/index";
import type { MessageEnv } from "../conversation";

/**
 * The quote of the message this one replies to. A click shows the parent: scrolled to in the list when it is
 * loaded there, else its thread opens (which reads it).
 */
export function ReplyQuote({ message: m, env }: { message: ChatMessage | OutboxItem; env: MessageEnv | null }) {
  const to = (m as { replyTo?: ChatMessage["replyTo"] | number }).replyTo;
  if (to === undefined || !env) return null;
  // An outbox item names its parent by seq: quote the held parent.
  let quote: NonNullable<ChatMessage["replyTo"]> | null = null;
  if (typeof to === "number") {
    const parent = env.store.message(to);
    quote = parent ? { seq: to, senderId: parent.senderId, quote: quoteOf(parent.body, parent.attachments), ...(parent.deleted ? { deleted: true as const } : {}) } : { seq: to, senderId: "", quote: "" };
  } else quote = to;
  const who = quote.senderId === env.me ? "You" : (env.names.get(quote.senderId) ?? "someone");
  const seq = quote.seq;
  return (
    <button
      type="button"
      class={quote.deleted ? "quote deleted" : "quote"}
      data-action="show-parent"
      data-reply-to={seq}
      onClick={() => {
        const el = document.querySelector<HTMLElement>(`[data-testid=messages] li[data-seq="${seq}"]`);
        if (!el) {
          env.store.threadSeq.value = seq;
          return;
        }
        el.scrollIntoView({ block: "center", behavior: "smooth" });
        el.classList.remove("flash");
        void el.offsetWidth; // restart the animation
        el.classList.add("flash");
      }}
    >
      <span class="quote-sender">{who}</span>
      <span class="quote-text">{quote.deleted ? "deleted message" : quote.quote || "…"}</span>
    </button>
  );
}
