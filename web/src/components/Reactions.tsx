// Reactions on a message: the chips under it (one per emoji with its count, mine marked; a click toggles
// mine; hovering or focusing one reads who reacted, again after the reactions change) and the picker
// the action menu opens, with its palette (REACTIONS).
import type { ChatMessage } from "../../../client/src/index";
import { useState } from "preact/hooks";
import type { MessageEnv } from "../conversation";
import { Popup } from "./Popup";

/** The reaction picker's palette. */
export const REACTIONS = ["👍", "❤️", "😂", "😮", "😢", "🎉"] as const;

/** The chips of a stored message with reactions; `rev` is its row's (Row.rev), `actions` whether they can be clicked. */
export function ReactionChips({ message: stored, rev, env, actions }: { message: ChatMessage; rev: string; env: MessageEnv | null; actions: boolean }) {
  // Who reacted, read when a chip is first hovered or focused, and again after the reactions change.
  const [reactors, setReactors] = useState<{ rev: string; names: Map<string, string[]> } | null>(null);

  const loadReactors = () => {
    if (!env || reactors?.rev === rev) return;
    const at = rev;
    setReactors({ rev: at, names: new Map() });
    env.store.reactors(stored.seq).then(
      (names) => setReactors((cur) => (cur?.rev === at ? { rev: at, names } : cur)),
      () => {},
    );
  };

  return (
    <ul class="reactions" aria-label="Reactions">
      {(stored.reactions ?? []).map((r) => (
        <li key={r.emoji}>
          <button
            type="button"
            class={r.me ? "chip me" : "chip"}
            data-emoji={r.emoji}
            aria-pressed={r.me === true}
            disabled={!actions}
            title={reactors?.rev === rev && reactors.names.has(r.emoji) ? `${reactors.names.get(r.emoji)!.join(", ")} reacted ${r.emoji}` : r.me ? `You reacted ${r.emoji}` : `React ${r.emoji}`}
            onClick={() => env?.store.react(stored.seq, r.emoji, !r.me)}
            onMouseEnter={loadReactors}
            onFocus={loadReactors}
          >
            <span class="emoji">{r.emoji}</span> <span class="count">{r.count}</span>
          </button>
        </li>
      ))}
    </ul>
  );
}

/** The picker next to the message's menu button: the palette, mine checked; a pick toggles that reaction and closes it. */
export function ReactionPicker({
  anchor,
  message: stored,
  env,
  close,
}: {
  anchor: { current: HTMLElement | null };
  message: ChatMessage;
  env: MessageEnv;
  close: (focus?: boolean) => void;
}) {
  return (
    <Popup anchor={anchor} role="menu" label="Pick a reaction" class="picker" orientation="horizontal" onDismiss={() => close(false)}>
      {REACTIONS.map((emoji) => {
        const mineAlready = stored.reactions?.some((r) => r.emoji === emoji && r.me) === true;
        return (
          <button
            key={emoji}
            type="button"
            role="menuitemcheckbox"
            aria-checked={mineAlready}
            data-emoji={emoji}
            aria-label={`React ${emoji}`}
            onClick={() => {
              env.store.react(stored.seq, emoji, !mineAlready);
              close();
            }}
          >
            {emoji}
          </button>
        );
      })}
    </Popup>
  );
}
