// A message's inline edit box: the body in a textarea that grows with it; Enter saves, Shift+Enter breaks
// the line, Esc cancels, and an empty body is refused unless the message keeps files.
import { useEffect, useRef, useState } from "preact/hooks";

/** Inline edit: the body in a textarea; Enter saves, Shift+Enter breaks the line, Esc cancels. */
export function EditBox({ initial, allowEmpty, onSave, onCancel }: { initial: string; allowEmpty: boolean; onSave: (body: string) => void; onCancel: () => void }) {
  const box = useRef<HTMLTextAreaElement>(null);
  const [empty, setEmpty] = useState(false);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    el.focus();
    el.setSelectionRange(el.value.length, el.value.length);
    fit(el);
  }, []);
  const save = () => {
    const text = box.current!.value.trim();
    if (!text && !allowEmpty) {
      setEmpty(true);
      return;
    }
    onSave(text);
  };
  return (
    <form
      class="edit"
      onSubmit={(e) => {
        e.preventDefault();
        save();
      }}
    >
      <textarea
        ref={box}
        class="edit-box"
        aria-label="Edit message"
        defaultValue={initial}
        rows={1}
        maxLength={4000}
        onInput={(e) => {
          fit(e.currentTarget);
          setEmpty(false);
        }}
        onKeyDown={(e) => {
          if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            save();
          } else if (e.key === "Escape") {
            e.preventDefault();
            e.stopPropagation();
            onCancel();
          }
        }}
      />
      {empty ? <span class="hint-inline">A message needs text; delete it instead.</span> : null}
      <span class="edit-actions">
        <button type="button" class="secondary" data-action="cancel-edit" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" data-action="save-edit">
          Save
        </button>
      </span>
    </form>
  );
}

function fit(el: HTMLTextAreaElement): void {
  el.style.height = "auto";
  el.style.height = `${el.scrollHeight}px`;
}
