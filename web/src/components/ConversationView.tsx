// One conversation: header with presence, connection banner, add-member form (group owners and admins),
// the message list, who is typing, the composer. Mark-read is an effect of what is shown and visible.
import { useSignalEffect } from "@preact/signals";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { ConnectionState, PublicUser } from "../../../client/src/index";
import { errorText, isOnline, visible } from "../app";
import { ConversationStore } from "../conversation";
import { Composer, sendFiles } from "./Composer";
import { MessageList } from "./MessageList";
import { Retention } from "./Retention";
import { ThreadPane } from "./ThreadPane";

function bannerText(state: ConnectionState): string | null {
  if (state === "open" || state === "closed") return null;
  if (state === "offline" || !navigator.onLine) return "Offline. Messages will be sent when you are back online.";
  return state === "connecting" ? "Connecting…" : "Reconnecting…";
}

export function ConversationView({ id, me }: { id: string; me: PublicUser }) {
  const store = useMemo(() => new ConversationStore(id, me), [id, me.id]);
  useEffect(() => () => store.close(), [store]);
  const scroller = useRef<HTMLDivElement>(null);
  const composer = useRef<HTMLInputElement>(null);
  const addInput = useRef<HTMLInputElement>(null);
  const [dragging, setDragging] = useState(false);
  const scrollDown = () => {
    if (scroller.current) scroller.current.scrollTop = scroller.current.scrollHeight;
  };
  const hasFiles = (e: DragEvent) => e.dataTransfer?.types.includes("Files") ?? false;

  // Read everything delivered while the page is visible.
  useSignalEffect(() => {
    const seq = store.lastSeq.value;
    if (visible.value && seq > 0) store.conv.peek()?.markRead(seq);
  });
  // Once open: the newest message in view, the box ready to type in.
  useSignalEffect(() => {
    if (!store.conv.value) return;
    requestAnimationFrame(() => {
      if (scroller.current) scroller.current.scrollTop = scroller.current.scrollHeight;
    });
    composer.current?.focus();
  });

  const conv = store.conv.value;
  const info = store.info.value;
  const group = info?.type === "group";
  const peer = info?.type === "direct" ? info.members.find((m) => m.userId !== me.id) : undefined;
  const title = store.unavailable.value ? "Unavailable" : !conv ? "…" : group ? (info?.title ?? "group") : (peer?.username ?? "…");
  const online = peer ? isOnline(peer.userId) : false;
  const myRole = info?.members.find((m) => m.userId === me.id)?.role;
  const banner = conv ? bannerText(store.state.value) : null;
  const typing = store.typing.value;
  const threadSeq = store.threadSeq.value;

  return (
    <main
      class={`conversation-view${dragging ? " dragging" : ""}${threadSeq !== null ? " thread-open" : ""}`}
      data-testid="conversation"
      onDragEnter={(e) => {
        if (!hasFiles(e)) return;
        e.preventDefault();
        setDragging(true);
      }}
      onDragOver={(e) => {
        if (!hasFiles(e)) return;
        e.preventDefault();
        if (e.dataTransfer) e.dataTransfer.dropEffect = "copy";
      }}
      onDragLeave={(e) => {
        // Only when the pointer leaves the view, not when it moves between its children.
        if (!e.currentTarget.contains(e.relatedTarget as Node | null)) setDragging(false);
      }}
      onDrop={(e) => {
        if (!hasFiles(e)) return;
        e.preventDefault();
        setDragging(false);
        sendFiles(store, Array.from(e.dataTransfer?.files ?? []), composer.current, scrollDown);
      }}
    >
      <div class="conversation-main">
        <header>
          <a href="#/" class="back" data-action="back" aria-label="Back to chats">
            ‹
          </a>
          <div class="who">
            <div class="name">
              <h1 data-testid="title">{title}</h1>
              <span class={online ? "dot online" : "dot"} data-online={peer ? String(online) : undefined} hidden={!peer} />
            </div>
            <span class="sub">{group ? `${info?.members.length ?? 0} members` : ""}</span>
          </div>
          {info ? (
            <Retention
              days={info.retentionDays}
              own={info.retentionOwn}
              editable={!group || myRole !== "member"}
              onChange={(days) => store.setRetention(days).catch((err: unknown) => (store.error.value = errorText(err)))}
            />
          ) : null}
        </header>
        <div class="banner" role="status" data-testid="banner" hidden={banner === null}>
          {banner ?? ""}
        </div>
        <form
          class="add row"
          hidden={!group || myRole === "member"}
          onSubmit={(e) => {
            e.preventDefault();
            const name = addInput.current!.value.trim().toLowerCase();
            if (!name) return;
            store.addMember(name).then(
              () => (addInput.current!.value = ""),
              (err: unknown) => (store.error.value = errorText(err)),
            );
          }}
        >
          <input ref={addInput} id="add-member" placeholder="add member by username" autocomplete="off" />
          <button data-action="add-member">Add</button>
        </form>
        <div class="scroller" ref={scroller}>
          <MessageList store={store} scroller={scroller} />
        </div>
        <p class="typing" data-testid="typing">
          {typing.length === 0 ? "" : typing.length === 1 ? `${typing[0]!.username} is typing…` : `${typing.map((u) => u.username).join(", ")} are typing…`}
        </p>
        <Composer
          store={store}
          inputRef={composer}
          onSent={scrollDown}
        />
        <p class="error" role="alert">
          {store.error}
        </p>
      </div>
      {threadSeq !== null && conv ? <ThreadPane key={threadSeq} store={store} seq={threadSeq} /> : null}
    </main>
  );
}
