// The message box. A send while the conversation is still loading is queued in the outbox (see
// ConversationStore.send), so Enter always clears the box and the message goes out once it can.
import { errorText } from "../app";
import type { ConversationStore } from "../conversation";

export function Composer({ store, onSent, inputRef }: { store: ConversationStore; onSent: () => void; inputRef: { current: HTMLInputElement | null } }) {
  const input = inputRef;
  return (
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
  );
}
