// The message box. A send while the conversation is still loading is queued in the outbox (see
// ConversationStore.send), so Enter always clears the box and the message goes out once it can.
// Files come from the attach button (or a drop on the conversation, see ConversationView): each shows
// a progress bar while it uploads, then they are sent as one message with the box's text.
// A reply shows as a bar above the box (Esc or ✕ cancels it); @-mentions complete in the box.
import { useRef } from "preact/hooks";
import { errorText } from "../app";
import type { ConversationStore, MessageExtras } from "../conversation";
import { mentionsOf } from "../mentions";
import { MentionInput } from "./MentionInput";

/** The reply and mentions a body is sent with; `replyTo` defaults to the main composer's reply. */
export function extrasFor(store: ConversationStore, body: string, replyTo = store.replyTo.peek()?.seq): MessageExtras {
  const env = store.env.peek();
  if (!env?.changes) return {};
  return { ...(replyTo !== undefined ? { replyTo } : {}), ...mentionsOf(body, env.members, env.me, env.group && env.moderator) };
}

/** Send files with whatever is in the box (the text becomes their caption), as a reply when one is set. */
export function sendFiles(store: ConversationStore, files: readonly File[], box: HTMLInputElement | null, onSent: () => void): void {
  if (files.length === 0) return;
  const body = box?.value.trim() ?? "";
  if (box) box.value = "";
  const extras = extrasFor(store, body);
  store.replyTo.value = null;
  void store.sendFiles(files, body, extras).then(onSent, (err: unknown) => (store.error.value = errorText(err)));
}

export function Composer({ store, onSent, inputRef }: { store: ConversationStore; onSent: () => void; inputRef: { current: HTMLInputElement | null } }) {
  const input = inputRef;
  const picker = useRef<HTMLInputElement>(null);
  const uploads = store.uploads.value;
  const env = store.env.value;
  const reply = store.replyTo.value;
  const replyName = reply ? (reply.senderId === env?.me ? "yourself" : (env?.names.get(reply.senderId) ?? "someone")) : "";
  return (
    <div class="composer-wrap">
      {uploads.length ? (
        <ul class="uploads" data-testid="uploads">
          {uploads.map((u) => (
            <li key={u.key} class="upload">
              <span class="name">{u.name}</span>
              <progress max={u.total || 1} value={u.loaded} aria-label={`Uploading ${u.name}`} />
            </li>
          ))}
        </ul>
      ) : null}
      {reply ? (
        <div class="reply-bar" data-testid="reply-bar" data-reply-to={reply.seq}>
          <span class="text">
            Replying to <strong>{replyName}</strong>: <span class="quote-text">{reply.quote}</span>
          </span>
          <button type="button" class="link" data-action="cancel-reply" aria-label="Cancel reply" title="Cancel reply" onClick={() => (store.replyTo.value = null)}>
            ✕
          </button>
        </div>
      ) : null}
      <form
        class="composer row"
        onSubmit={(e) => {
          e.preventDefault();
          const box = input.current!;
          const body = box.value.trim();
          if (!body) return;
          box.value = "";
          const extras = extrasFor(store, body);
          store.replyTo.value = null;
          void store.send(body, extras).then(onSent, (err: unknown) => (store.error.value = errorText(err)));
        }}
      >
        <input
          ref={picker}
          type="file"
          multiple
          hidden
          id="attach-input"
          onChange={(e) => {
            const files = Array.from(e.currentTarget.files ?? []);
            e.currentTarget.value = "";
            sendFiles(store, files, input.current, onSent);
          }}
        />
        <button type="button" class="attach" data-action="attach" aria-label="Attach files" title="Attach files" onClick={() => picker.current?.click()}>
          +
        </button>
        <MentionInput
          id="composer"
          inputRef={input}
          env={env}
          placeholder={reply ? "Reply" : "Message"}
          onInput={(value) => store.conv.peek()?.setTyping(value.length > 0)}
          onKeyDown={(e) => {
            if (e.key === "Escape" && store.replyTo.peek()) {
              e.preventDefault();
              store.replyTo.value = null;
            }
          }}
        />
        <button data-action="send" aria-label="Send">
          Send
        </button>
      </form>
    </div>
  );
}
