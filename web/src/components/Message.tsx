// The one place a message renders: body, attachments, sender, time and ticks, and what can change it
// (issue 12): its action menu, inline edit, delete confirmation, reaction picker and chips, reply quote
// and thread link. Each of these states belongs to this component, so keyed rendering keeps them with
// their message while the list around it changes.
import type { ComponentChildren } from "preact";
import { quoteOf, type ChatMessage, type MessageStatus, type OutboxItem } from "../../../client/src/index";
import { useEffect, useRef, useState } from "preact/hooks";
import { signedUrl } from "../attachments";
import type { MessageEnv, Row } from "../conversation";
import { formatSize, formatTime } from "../format";
import { splitMentions } from "../mentions";
import { memo } from "./memo";

// Plain characters (no emoji): they render with any system font, headless Chromium included.
const TICKS: Record<MessageStatus, string> = { pending: "○", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "!" };

/** The reaction picker's palette. */
export const REACTIONS = ["👍", "❤️", "😂", "😮", "😢", "🎉"] as const;

type Attachment = NonNullable<ChatMessage["attachments"]>[number];

/** A message still in the outbox: its files as they will be sent (a file not uploaded yet shows its name and size). */
function pendingAttachments(item: OutboxItem): Attachment[] {
  // Files already uploaded are known by id only until the message is stored: they show then.
  return (item.attachments ?? []).flatMap((a, i) =>
    "file" in a
      ? [{ id: a.attachmentId ?? `pending-${i}`, name: a.name, size: a.file.size, contentType: a.contentType ?? a.file.type, width: a.width, height: a.height, preview: a.preview }]
      : [],
  );
}

/** A row of the list (its `rev` re-renders it when the message changes), and where it is shown. */
export interface MessageProps extends Omit<Row, "key"> {
  /** Null while the conversation loads (queued messages only: nothing to act on yet). */
  env: MessageEnv | null;
  /** In the thread pane: no reply quote (every message there replies to the parent) and no thread link. */
  inThread?: boolean;
}

type Mode = "view" | "menu" | "edit" | "confirm-delete" | "react";

export const Message = memo(function Message({ message: m, mine, status, sender, detail, rev, env, inThread = false }: MessageProps) {
  const stored = "seq" in m ? m : null;
  const attachments = "seq" in m ? (m.attachments ?? []) : pendingAttachments(m);
  const [mode, setMode] = useState<Mode>("view");
  const menuButton = useRef<HTMLButtonElement>(null);
  // Who reacted, read when a chip is first hovered or focused, and again after the reactions change.
  const [reactors, setReactors] = useState<{ rev: string; names: Map<string, string[]> } | null>(null);

  const deleted = stored?.deleted ?? null;
  const actions = stored !== null && !deleted && env?.changes === true;
  // Deleted (by someone else, say) while a menu or the edit box was open: nothing is left to act on.
  useEffect(() => {
    if (!actions && mode !== "view") setMode("view");
  }, [actions]);
  const canEdit = actions && mine;
  const canDelete = actions && (mine || env.moderator);
  const mentionsMe = !!stored && !mine && !deleted && (stored.mentionsAll === true || (env !== null && (stored.mentions ?? []).includes(env.me)));
  const close = (focus = true) => {
    setMode("view");
    if (focus) requestAnimationFrame(() => menuButton.current?.focus());
  };

  const loadReactors = () => {
    if (!stored || !env || reactors?.rev === rev) return;
    const at = rev;
    setReactors({ rev: at, names: new Map() });
    env.store.reactors(stored.seq).then(
      (names) => setReactors((cur) => (cur?.rev === at ? { rev: at, names } : cur)),
      () => {},
    );
  };

  const classes = ["msg", mine ? "mine" : "theirs"];
  if (deleted) classes.push("deleted");
  if (mentionsMe) classes.push("mentions-me");
  if (mode !== "view") classes.push("active");
  const body = m.body;

  return (
    <li
      class={classes.join(" ")}
      data-client-msg-id={m.clientMsgId}
      data-seq={stored?.seq}
      data-mentions-me={mentionsMe ? "true" : undefined}
      onKeyDown={(e) => {
        if (e.key === "Escape" && (mode === "menu" || mode === "react" || mode === "confirm-delete")) {
          e.stopPropagation();
          close();
        }
      }}
    >
      {sender ? <span class="sender">{sender}</span> : null}
      {!inThread && !deleted ? <ReplyQuote message={m} env={env} /> : null}
      {deleted ? (
        <span class="tombstone" data-testid="tombstone">
          This message was deleted
        </span>
      ) : mode === "edit" && stored ? (
        <EditBox
          initial={body}
          allowEmpty={attachments.length > 0}
          onSave={(text) => {
            if (text !== stored.body) env?.store.edit(stored.seq, text);
            close();
          }}
          onCancel={() => close()}
        />
      ) : body || attachments.length === 0 ? (
        <span class="body">
          <Body text={body} env={env} />
        </span>
      ) : null}
      {!deleted && attachments.length ? (
        <ul class="attachments">
          {attachments.map((a) => (
            <AttachmentItem key={a.id} attachment={a} stored={stored !== null} />
          ))}
        </ul>
      ) : null}
      {stored && !deleted && stored.reactions?.length ? (
        <ul class="reactions" aria-label="Reactions">
          {stored.reactions.map((r) => (
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
      ) : null}
      {stored && !inThread && stored.replies?.count ? (
        <button type="button" class="thread-link link" data-action="open-thread" onClick={() => env && (env.store.threadSeq.value = stored.seq)}>
          {stored.replies.count === 1 ? "1 reply" : `${stored.replies.count} replies`}
        </button>
      ) : null}
      <span class="meta">
        {stored?.edited && !deleted ? (
          <span class="edited" data-testid="edited" title={`Edited ${new Date(stored.edited.at).toLocaleString()}`}>
            edited
          </span>
        ) : null}
        <time>{formatTime(m.createdAt)}</time>
        {status ? (
          <span class={`tick ${status}`} data-status={status} title={detail ?? status}>
            {TICKS[status] ?? ""}
          </span>
        ) : null}
      </span>
      {actions && env ? (
        <>
          <button
            type="button"
            ref={menuButton}
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
            <Popup key="menu" anchor={menuButton} role="menu" label="Message actions" class="msg-menu" orientation="vertical" onDismiss={() => close(false)}>
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
            <Popup key="react" anchor={menuButton} role="menu" label="Pick a reaction" class="picker" orientation="horizontal" onDismiss={() => close(false)}>
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
          ) : mode === "confirm-delete" ? (
            <Popup key="confirm" anchor={menuButton} role="alertdialog" label="Delete this message?" class="confirm" orientation="horizontal" onDismiss={() => close(false)} focusLast>
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
      ) : null}
    </li>
  );
});

/** A body with the @names of members (and @all) marked, mine most of all. Its text is the body, unchanged. */
function Body({ text, env }: { text: string; env: MessageEnv | null }) {
  if (!env || !text.includes("@")) return <>{text}</>;
  return (
    <>
      {splitMentions(text, env.ids).map((p, i) =>
        p.mention ? (
          <span key={i} class={p.mention.userId === null || p.mention.userId === env.me ? "mention me" : "mention"}>
            {p.text}
          </span>
        ) : (
          p.text
        ),
      )}
    </>
  );
}

/**
 * The quote of the message this one replies to. A click shows the parent: scrolled to in the list when it is
 * loaded there, else its thread opens (which reads it).
 */
function ReplyQuote({ message: m, env }: { message: ChatMessage | OutboxItem; env: MessageEnv | null }) {
  const to = (m as { replyTo?: ChatMessage["replyTo"] | number }).replyTo;
  if (to === undefined || !env) return null;
  // An outbox item names its parent by seq: quote the held parent.
  let quote: NonNullable<ChatMessage["replyTo"]> | null = null;
  if (typeof to === "number") {
    const parent = env.store.message(to);
    quote = parent ? { seq: to, senderId: parent.senderId, quote: quoteOf(parent.body, parent.attachments), ...(parent.deleted ? { deleted: true as const } : {}) } : { seq: to, senderId: "", quote: "" };
  } else quote = to;
  const who = quote.senderId === env.me ? "You" : (env.names.get(quote.senderId) ?? "someone");
  const seq = quote.seq;
  return (
    <button
      type="button"
      class={quote.deleted ? "quote deleted" : "quote"}
      data-action="show-parent"
      data-reply-to={seq}
      onClick={() => {
        const el = document.querySelector<HTMLElement>(`[data-testid=messages] li[data-seq="${seq}"]`);
        if (!el) {
          env.store.threadSeq.value = seq;
          return;
        }
        el.scrollIntoView({ block: "center", behavior: "smooth" });
        el.classList.remove("flash");
        void el.offsetWidth; // restart the animation
        el.classList.add("flash");
      }}
    >
      <span class="quote-sender">{who}</span>
      <span class="quote-text">{quote.deleted ? "deleted message" : quote.quote || "…"}</span>
    </button>
  );
}

/** Inline edit: the body in a textarea; Enter saves, Shift+Enter breaks the line, Esc cancels. */
function EditBox({ initial, allowEmpty, onSave, onCancel }: { initial: string; allowEmpty: boolean; onSave: (body: string) => void; onCancel: () => void }) {
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

/**
 * A small menu next to its button (keyed by its caller: each popup mounts anew, so focus moves into it): opens above it when there is room, else below; focus moves into it,
 * arrow keys move between its buttons, Esc (handled by the message) or a click outside closes it.
 */
function Popup({
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

/** The signed URL of a stored attachment, asked for once the element is near the viewport. */
function useSignedUrl(id: string, enabled: boolean): [{ current: HTMLLIElement | null }, string | null] {
  const ref = useRef<HTMLLIElement>(null);
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    if (!enabled) return;
    let live = true;
    const load = () => void signedUrl(id).then((u) => live && setUrl(u), () => {});
    const el = ref.current;
    if (!el || typeof IntersectionObserver === "undefined") {
      load();
      return () => void (live = false);
    }
    const io = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting)) {
          io.disconnect();
          load();
        }
      },
      { rootMargin: "400px 0px" },
    );
    io.observe(el);
    return () => {
      live = false;
      io.disconnect();
    };
  }, [id, enabled]);
  return [ref, url];
}

/**
 * An image: inline from its signed URL (lazy), at the uploader's measured size so the layout is right
 * before it loads, its preview as the placeholder; a click opens it in a lightbox. Another file: name,
 * size and a download link. A file still in the outbox shows its name and size (and preview) only.
 */
function AttachmentItem({ attachment: a, stored }: { attachment: Attachment; stored: boolean }) {
  const [ref, url] = useSignedUrl(a.id, stored);
  const [open, setOpen] = useState(false);
  const image = a.contentType.startsWith("image/");
  const preview = image && a.preview?.startsWith("data:image/") ? a.preview : null;
  const sized = a.width && a.height ? { aspectRatio: `${a.width} / ${a.height}` } : {};
  return (
    <li class={image ? "attachment image" : "attachment file"} data-attachment-id={a.id} ref={ref}>
      {image && (url || preview) ? (
        <button type="button" class="thumb" data-action="open-image" aria-label={`Open ${a.name}`} disabled={!url} onClick={() => setOpen(true)}>
          {/* The uploader's measured size, kept when the (smaller, maybe differently shaped) preview or the file loads. */}
          <img
            src={url ?? preview!}
            alt={a.name}
            loading="lazy"
            decoding="async"
            width={a.width}
            height={a.height}
            style={preview ? { ...sized, backgroundImage: `url("${preview}")`, backgroundSize: "cover" } : sized}
          />
        </button>
      ) : null}
      <span class="name">{a.name}</span> <span class="size">{formatSize(a.size)}</span>
      {!image && url ? (
        <>
          {" "}
          <a class="download" href={url} download={a.name} data-action="download">
            Download
          </a>
        </>
      ) : null}
      {open && url ? <Lightbox url={url} name={a.name} onClose={() => setOpen(false)} /> : null}
    </li>
  );
}

/** The full image over everything; Esc or a click closes it. */
function Lightbox({ url, name, onClose }: { url: string; name: string; onClose: () => void }) {
  const self = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && onClose();
    window.addEventListener("keydown", onKey);
    self.current?.focus();
    return () => window.removeEventListener("keydown", onKey);
  }, [onClose]);
  return (
    <div class="lightbox" role="dialog" aria-modal="true" aria-label={name} tabIndex={-1} ref={self} data-testid="lightbox" onClick={onClose}>
      <img src={url} alt={name} />
    </div>
  );
}
