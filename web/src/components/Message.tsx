// The one place a message renders: body, attachments, sender, time and ticks, and what can change it
// (issue 12): its action menu, inline edit, delete confirmation, reaction picker and chips, reply quote
// and thread link. Each of these states belongs to this component or to one of its parts, so keyed
// rendering keeps them with their message while the list around it changes. This file owns the layout
// and the mode (which of menu, picker, confirmation or edit box is open); the parts are components of
// their own: MessageMenu.tsx (with Popup.tsx), Reactions.tsx, ReplyQuote.tsx, EditBox.tsx, Attachments.tsx.
import type { MessageStatus } from "../../../client/src/index";
import { useEffect, useRef, useState } from "preact/hooks";
import type { MessageEnv, Row } from "../conversation";
import { formatTime } from "../format";
import { splitMentions } from "../mentions";
import { AttachmentItem, pendingAttachments } from "./Attachments";
import { EditBox } from "./EditBox";
import { MessageMenu, type Mode } from "./MessageMenu";
import { ReactionChips } from "./Reactions";
import { ReplyQuote } from "./ReplyQuote";
import { memo } from "./memo";

// Plain characters (no emoji): they render with any system font, headless Chromium included.
const TICKS: Record<MessageStatus, string> = { pending: "○", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "!" };

/** A row of the list (its `rev` re-renders it when the message changes), and where it is shown. */
export interface MessageProps extends Omit<Row, "key"> {
  /** Null while the conversation loads (queued messages only: nothing to act on yet). */
  env: MessageEnv | null;
  /** In the thread pane: no reply quote (every message there replies to the parent) and no thread link. */
  inThread?: boolean;
}

export const Message = memo(function Message({ message: m, mine, status, sender, detail, rev, env, inThread = false }: MessageProps) {
  const stored = "seq" in m ? m : null;
  const attachments = "seq" in m ? (m.attachments ?? []) : pendingAttachments(m);
  const [mode, setMode] = useState<Mode>("view");
  const menuButton = useRef<HTMLButtonElement>(null);

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
        <ReactionChips message={stored} rev={rev} env={env} actions={actions} />
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
        <MessageMenu
          message={stored}
          env={env}
          mine={mine}
          sender={sender}
          inThread={inThread}
          canEdit={canEdit}
          canDelete={canDelete}
          mode={mode}
          setMode={setMode}
          close={close}
          button={menuButton}
        />
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
