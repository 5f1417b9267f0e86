// The small popup a message's actions open (the action menu, the reaction picker, the delete
// confirmation): where it opens (above its button when there is room, else below), where focus goes,
// arrow-key movement between its buttons, and closing on a click outside or Tab.
import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";

/**
 * A small menu next to its button (keyed by its caller: each popup mounts anew, so focus moves into it): opens above it when there is room, else below; focus moves into it,
 * arrow keys move between its buttons, Esc (handled by the message) or a click outside closes it.
 */
export function Popup({
  anchor,
  role,
  label,
  class: cls,
  orientation,
  onDismiss,
  focusLast = false,
  children,
}: {
  anchor: { current: HTMLElement | null };
  role: "menu" | "alertdialog";
  label: string;
  class: string;
  orientation: "vertical" | "horizontal";
  onDismiss: () => void;
  focusLast?: boolean;
  children: ComponentChildren;
}) {
  const self = useRef<HTMLDivElement>(null);
  const [below, setBelow] = useState(false);
  useEffect(() => {
    const el = self.current;
    const a = anchor.current;
    if (!el) return;
    const pane = a?.closest(".scroller, .thread-list");
    if (a && pane) setBelow(a.getBoundingClientRect().top - pane.getBoundingClientRect().top < el.offsetHeight + 8);
    const buttons = el.querySelectorAll<HTMLButtonElement>("button");
    (focusLast ? buttons[buttons.length - 1] : buttons[0])?.focus();
    const outside = (e: PointerEvent) => {
      if (!el.contains(e.target as Node) && !a?.contains(e.target as Node)) onDismiss();
    };
    document.addEventListener("pointerdown", outside, true);
    return () => document.removeEventListener("pointerdown", outside, true);
  }, []);
  const next = orientation === "vertical" ? "ArrowDown" : "ArrowRight";
  const prev = orientation === "vertical" ? "ArrowUp" : "ArrowLeft";
  return (
    <div
      ref={self}
      role={role}
      aria-label={label}
      aria-orientation={role === "menu" ? orientation : undefined}
      class={`popup ${cls} ${below ? "below" : "above"}`}
      onKeyDown={(e) => {
        const buttons = Array.from(self.current?.querySelectorAll<HTMLButtonElement>("button") ?? []);
        const i = buttons.indexOf(document.activeElement as HTMLButtonElement);
        const go = (j: number) => {
          e.preventDefault();
          buttons[(j + buttons.length) % buttons.length]?.focus();
        };
        if (e.key === next) go(i + 1);
        else if (e.key === prev) go(i - 1);
        else if (e.key === "Home") go(0);
        else if (e.key === "End") go(buttons.length - 1);
        else if (e.key === "Tab") onDismiss();
      }}
    >
      {children}
    </div>
  );
}
