// A message box that completes @-mentions: typing `@` and letters lists matching members (and `@all`
// for a group's owners and admins); arrow keys move, Enter or Tab picks, Esc closes. Picking writes
// `@username ` into the text; the ids are read back from the text when the message is sent (mentionsOf).
import { useState } from "preact/hooks";
import type { MessageEnv } from "../conversation";
import { mentionOptions, mentionQuery, type MentionOption } from "../mentions";

interface Open {
  start: number;
  options: MentionOption[];
  active: number;
}

export function MentionInput({
  id,
  inputRef,
  env,
  placeholder,
  onInput,
  onKeyDown,
}: {
  id: string;
  inputRef: { current: HTMLInputElement | null };
  env: MessageEnv | null;
  placeholder: string;
  onInput?: (value: string) => void;
  /** Keys the list did not take (Escape to cancel a reply, say). */
  onKeyDown?: (e: KeyboardEvent) => void;
}) {
  const [open, setOpen] = useState<Open | null>(null);
  const listId = `${id}-mentions`;

  const refresh = (el: HTMLInputElement) => {
    if (!env?.changes) return setOpen(null);
    const q = mentionQuery(el.value, el.selectionStart ?? el.value.length);
    const options = q ? mentionOptions(env.members, env.me, q.query, env.group && env.moderator) : [];
    if (!q || options.length === 0) return setOpen(null);
    // Keep the highlighted option while it still matches.
    setOpen((prev) => {
      const kept = prev ? options.findIndex((o) => o.username === prev.options[prev.active]?.username) : -1;
      return { start: q.start, options, active: Math.max(0, kept) };
    });
  };

  const pick = (o: MentionOption) => {
    const el = inputRef.current;
    if (!el || !open) return;
    const caret = el.selectionStart ?? el.value.length;
    const insert = `@${o.username} `;
    el.value = el.value.slice(0, open.start) + insert + el.value.slice(caret).replace(/^ /, "");
    const at = open.start + insert.length;
    el.setSelectionRange(at, at);
    el.focus();
    setOpen(null);
    onInput?.(el.value);
  };

  return (
    <div class="mention-wrap">
      {open ? (
        <ul class="mention-list" id={listId} role="listbox" aria-label="Mention someone" data-testid="mention-list">
          {open.options.map((o, i) => (
            <li
              key={o.username}
              id={`${listId}-${i}`}
              role="option"
              aria-selected={i === open.active}
              class={i === open.active ? "active" : undefined}
              data-username={o.username}
              // mousedown, not click: the box keeps its focus and caret.
              onMouseDown={(e) => {
                e.preventDefault();
                pick(o);
              }}
            >
              <span class="at">@{o.username}</span>
              {o.kind === "all" ? <span class="hint-inline"> everyone here</span> : null}
            </li>
          ))}
        </ul>
      ) : null}
      <input
        ref={inputRef}
        id={id}
        placeholder={placeholder}
        autocomplete="off"
        enterkeyhint="send"
        maxLength={4000}
        role="combobox"
        aria-autocomplete="list"
        aria-expanded={open !== null}
        aria-controls={open ? listId : undefined}
        aria-activedescendant={open ? `${listId}-${open.active}` : undefined}
        onInput={(e) => {
          refresh(e.currentTarget);
          onInput?.(e.currentTarget.value);
        }}
        onKeyUp={(e) => {
          if (e.key === "ArrowLeft" || e.key === "ArrowRight" || e.key === "Home" || e.key === "End") refresh(e.currentTarget);
        }}
        onBlur={() => setOpen(null)}
        onKeyDown={(e) => {
          if (open) {
            const n = open.options.length;
            if (e.key === "ArrowDown" || e.key === "ArrowUp") {
              e.preventDefault();
              setOpen({ ...open, active: (open.active + (e.key === "ArrowDown" ? 1 : n - 1)) % n });
              return;
            }
            if ((e.key === "Enter" || e.key === "Tab") && !e.isComposing) {
              e.preventDefault();
              pick(open.options[open.active]!);
              return;
            }
            if (e.key === "Escape") {
              e.preventDefault();
              e.stopPropagation();
              setOpen(null);
              return;
            }
          }
          onKeyDown?.(e);
        }}
      />
    </div>
  );
}
