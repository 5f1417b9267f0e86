// A message's actions: the ⋯ button and what it opens: the menu (edit, reply, react, delete, as this user
// may), the reaction picker and the delete confirmation. Which one is open (the mode) belongs to the
// message (Message.tsx), which also shows the edit box and closes these on Esc.
import type { ChatMessage } from "../../../client/src/index";
import type { MessageEnv } from "../conversation";
import { Popup } from "./Popup";
import { ReactionPicker } from "./Reactions";

export type Mode = "view" | "menu" | "edit" | "confirm-delete" | "react";

export function MessageMenu({
  message: stored,
  env,
  mine,
  sender,
  inThread,
  canEdit,
  canDelete,
  mode,
  setMode,
  close,
  button,
}: {
  message: ChatMessage;
  env: MessageEnv;
  mine: boolean;
  sender: string | null;
  inThread: boolean;
  canEdit: boolean;
  canDelete: boolean;
  mode: Mode;
  setMode: (mode: Mode) => void;
  /** Back to "view"; focus returns to the ⋯ button unless `focus` is false. */
  close: (focus?: boolean) => void;
  button: { current: HTMLButtonElement | null };
}) {
  return (
    <>
      <button
        type="button"
        ref={button}
        class="menu-button"
        data-action="message-menu"
        aria-label="Message actions"
        aria-haspopup="menu"
        aria-expanded={mode === "menu"}
        onClick={() => setMode(mode === "menu" ? "view" : "menu")}
        onKeyDown={(e) => {
          if (e.key === "ArrowDown" || e.key === "ArrowUp") {
            e.preventDefault();
            setMode("menu");
          }
        }}
      >
        ⋯
      </button>
      {mode === "menu" ? (
        <Popup key="menu" anchor={button} role="menu" label="Message actions" class="msg-menu" orientation="vertical" onDismiss={() => close(false)}>
          {canEdit ? (
            <button type="button" role="menuitem" data-action="edit" onClick={() => setMode("edit")}>
              Edit
            </button>
          ) : null}
          <button
            type="button"
            role="menuitem"
            data-action="reply"
            onClick={() => {
              setMode("view");
              if (inThread) document.getElementById("thread-composer")?.focus();
              else {
                env.store.replyToMessage(stored);
                document.getElementById("composer")?.focus();
              }
            }}
          >
            Reply
          </button>
          <button type="button" role="menuitem" data-action="react" onClick={() => setMode("react")}>
            React
          </button>
          {canDelete ? (
            <button type="button" role="menuitem" class="danger" data-action="delete" onClick={() => setMode("confirm-delete")}>
              Delete
            </button>
          ) : null}
        </Popup>
      ) : mode === "react" ? (
        <ReactionPicker key="react" anchor={button} message={stored} env={env} close={close} />
      ) : mode === "confirm-delete" ? (
        <Popup key="confirm" anchor={button} role="alertdialog" label="Delete this message?" class="confirm" orientation="horizontal" onDismiss={() => close(false)} focusLast>
          <span class="question">{mine ? "Delete this message?" : `Delete ${sender ?? "their"}'s message?`}</span>
          <button
            type="button"
            class="danger"
            data-action="confirm-delete"
            onClick={() => {
              env.store.remove(stored.seq);
              setMode("view");
            }}
          >
            Delete
          </button>
          <button type="button" class="secondary" data-action="cancel-delete" onClick={() => close()}>
            Cancel
          </button>
        </Popup>
      ) : null}
    </>
  );
}
