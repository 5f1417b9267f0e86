// The scrolling list: keyed rows (an element follows its message from pending to stored, and only the
// rows whose props changed re-render), stick to the bottom when the user was there, keep the view in
// place when older history is prepended, and load older pages on scroll or when nothing can scroll.
import { useEffect, useLayoutEffect, useRef } from "preact/hooks";
import { errorText } from "../app";
import type { ConversationStore } from "../conversation";
import { Message } from "./Message";

export function MessageList({ store, scroller }: { store: ConversationStore; scroller: { current: HTMLDivElement | null } }) {
  const rows = store.rows.value;
  const loaded = store.conv.value !== null;
  const hasOlder = store.hasOlder.value;
  const env = store.env.value;

  // Measured before this render reaches the DOM, used after (in the layout effect).
  const before = useRef({ atBottom: true, height: 0, first: "" });
  const el = scroller.current;
  before.current = {
    atBottom: el ? el.scrollHeight - el.scrollTop - el.clientHeight < 80 : true,
    height: el?.scrollHeight ?? 0,
    first: before.current.first,
  };
  const first = rows[0]?.key ?? "";

  const loadOlder = () => void store.loadOlder().catch((err: unknown) => (store.error.value = errorText(err)));

  useLayoutEffect(() => {
    const s = scroller.current;
    if (!s) return;
    const { atBottom, height, first: previousFirst } = before.current;
    before.current.first = first;
    if (atBottom) s.scrollTop = s.scrollHeight;
    // Older messages went in above: keep the message the user was looking at in place.
    else if (previousFirst && first !== previousFirst) s.scrollTop += s.scrollHeight - height;
    // A tall screen may show the whole first page without a scrollbar: then nothing can scroll up.
    if (hasOlder && s.scrollHeight <= s.clientHeight) void store.loadOlder().catch(() => {});
  });

  useEffect(() => {
    const s = scroller.current;
    if (!s) return;
    const onScroll = () => {
      if (s.scrollTop < 120) loadOlder();
    };
    s.addEventListener("scroll", onScroll);
    return () => s.removeEventListener("scroll", onScroll);
  }, [store]);

  return (
    <>
      <p class="hint older">{loaded ? (hasOlder ? "Scroll up for older messages" : "Beginning of the conversation") : ""}</p>
      <ol class="messages" data-testid="messages">
        {rows.map((r) => (
          <Message {...r} env={env} />
        ))}
      </ol>
    </>
  );
}
