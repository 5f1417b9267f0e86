// The thread beside the conversation (over it on a phone): the parent, its replies oldest first, and a
// box that replies to it. Pages come from convo.thread(); replies the conversation holds (live ones,
// mine still in the outbox) come from the list's rows, so the pane follows the stream without polling.
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import type { ChatMessage, OutboxItem } from "../../../client/src/index";
import { errorText } from "../app";
import type { ConversationStore, Row } from "../conversation";
import { extrasFor } from "./Composer";
import { MentionInput } from "./MentionInput";
import { Message } from "./Message";

interface Loaded {
  parent: ChatMessage | null;
  replies: ChatMessage[];
  nextAfter: number | null;
  loading: boolean;
}

const replyToSeq = (m: ChatMessage | OutboxItem): number | undefined => {
  const to = (m as { replyTo?: ChatMessage["replyTo"] | number }).replyTo;
  return typeof to === "number" ? to : to?.seq;
};

export function ThreadPane({ store, seq }: { store: ConversationStore; seq: number }) {
  const [loaded, setLoaded] = useState<Loaded>({ parent: null, replies: [], nextAfter: null, loading: true });
  const [error, setError] = useState("");
  const box = useRef<HTMLInputElement>(null);
  const list = useRef<HTMLDivElement>(null);
  const env = store.env.value;
  const rows = store.rows.value;

  const load = (after?: number) => {
    setLoaded((l) => ({ ...l, loading: true }));
    store.thread(seq, after).then(
      (page) =>
        setLoaded((l) => ({
          parent: page.parent,
          replies: after === undefined ? page.messages : [...l.replies, ...page.messages],
          nextAfter: page.nextAfter,
          loading: false,
        })),
      (err: unknown) => {
        setError(errorText(err));
        setLoaded((l) => ({ ...l, loading: false }));
      },
    );
  };
  useEffect(() => {
    setError("");
    load();
    box.current?.focus();
  }, [seq, store.conv.value]);

  // The held rows win over the pages read: they follow edits, deletes and reactions as they happen.
  const held = rows.filter((r) => replyToSeq(r.message) === seq);
  const heldKeys = new Set(held.map((r) => r.key));
  const merged: Row[] = [...loaded.replies.map((m) => store.rowOf(m)).filter((r) => !heldKeys.has(r.key)), ...held];
  merged.sort((a, b) => ("seq" in a.message ? a.message.seq : Infinity) - ("seq" in b.message ? b.message.seq : Infinity));
  const parent = rows.find((r) => "seq" in r.message && r.message.seq === seq) ?? (loaded.parent ? store.rowOf(loaded.parent) : null);
  const count = parent && "seq" in parent.message ? (parent.message.replies?.count ?? merged.length) : merged.length;

  // Stay at the newest reply when the reader was there.
  const atBottom = useRef(true);
  const el = list.current;
  atBottom.current = el ? el.scrollHeight - el.scrollTop - el.clientHeight < 80 : true;
  useLayoutEffect(() => {
    if (atBottom.current && list.current) list.current.scrollTop = list.current.scrollHeight;
  });

  const close = () => {
    store.threadSeq.value = null;
    document.getElementById("composer")?.focus();
  };

  return (
    <aside
      class="thread-pane"
      data-testid="thread"
      data-parent-seq={seq}
      aria-label="Thread"
      onKeyDown={(e) => {
        if (e.key === "Escape" && !e.defaultPrevented) close();
      }}
    >
      <header>
        <button type="button" class="back link" data-action="close-thread" aria-label="Close thread" title="Close thread" onClick={close}>
          ✕
        </button>
        <div class="who">
          <h2>Thread</h2>
          <span class="sub" data-testid="thread-count">
            {count === 1 ? "1 reply" : `${count} replies`}
          </span>
        </div>
      </header>
      <div class="thread-list" ref={list}>
        {parent ? (
          <ol class="messages thread-parent" data-testid="thread-parent">
            <Message {...parent} env={env} inThread />
          </ol>
        ) : (
          <p class="hint">{loaded.loading ? "Loading…" : ""}</p>
        )}
        <ol class="messages" data-testid="thread-messages">
          {merged.map((r) => (
            <Message {...r} env={env} inThread />
          ))}
        </ol>
        {loaded.nextAfter !== null ? (
          <button type="button" class="link more" data-action="more-replies" disabled={loaded.loading} onClick={() => load(loaded.nextAfter!)}>
            Show more replies
          </button>
        ) : null}
      </div>
      <form
        class="composer row"
        onSubmit={(e) => {
          e.preventDefault();
          const input = box.current!;
          const body = input.value.trim();
          if (!body) return;
          input.value = "";
          setError("");
          void store.send(body, extrasFor(store, body, seq)).catch((err: unknown) => setError(errorText(err)));
        }}
      >
        <MentionInput id="thread-composer" inputRef={box} env={env} placeholder="Reply in thread" onInput={(v) => store.conv.peek()?.setTyping(v.length > 0)} />
        <button data-action="send-thread" aria-label="Send reply">
          Send
        </button>
      </form>
      <p class="error" role="alert">
        {error}
      </p>
    </aside>
  );
}
