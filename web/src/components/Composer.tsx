// The message box. A send while the conversation is still loading is queued in the outbox (see
// ConversationStore.send), so Enter always clears the box and the message goes out once it can.
// Files come from the attach button (or a drop on the conversation, see ConversationView): each shows
// a progress bar while it uploads, then they are sent as one message with the box's text.
import { useRef } from "preact/hooks";
import { errorText } from "../app";
import type { ConversationStore } from "../conversation";

/** Send files with whatever is in the box (the text becomes their caption). */
export function sendFiles(store: ConversationStore, files: readonly File[], box: HTMLInputElement | null, onSent: () => void): void {
  if (files.length === 0) return;
  const body = box?.value.trim() ?? "";
  if (box) box.value = "";
  void store.sendFiles(files, body).then(onSent, (err: unknown) => (store.error.value = errorText(err)));
}

export function Composer({ store, onSent, inputRef }: { store: ConversationStore; onSent: () => void; inputRef: { current: HTMLInputElement | null } }) {
  const input = inputRef;
  const picker = useRef<HTMLInputElement>(null);
  const uploads = store.uploads.value;
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
      <form
        class="composer row"
        onSubmit={(e) => {
          e.preventDefault();
          const box = input.current!;
          const body = box.value.trim();
          if (!body) return;
          box.value = "";
          void store.send(body).then(onSent, (err: unknown) => (store.error.value = errorText(err)));
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
        <input
          ref={input}
          id="composer"
          placeholder="Message"
          autocomplete="off"
          enterkeyhint="send"
          maxLength={4000}
          onInput={(e) => store.conv.peek()?.setTyping(e.currentTarget.value.length > 0)}
        />
        <button data-action="send" aria-label="Send">
          Send
        </button>
      </form>
    </div>
  );
}
