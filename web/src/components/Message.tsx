// The one place a message renders: body, attachments, sender, time and ticks. Edit, delete, reactions,
// reply quotes and thread links belong here too (issue 12), each with its state owned by this component.
import type { ChatMessage, MessageStatus, OutboxItem } from "../../../client/src/index";
import { formatSize, formatTime } from "../format";
import { memo } from "./memo";

// Plain characters (no emoji): they render with any system font, headless Chromium included.
const TICKS: Record<MessageStatus, string> = { pending: "○", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "!" };

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

export interface MessageProps {
  message: ChatMessage | OutboxItem;
  mine: boolean;
  status: MessageStatus | null;
  sender: string | null;
  detail: string | null;
}

export const Message = memo(function Message({ message: m, mine, status, sender, detail }: MessageProps) {
  const attachments = "seq" in m ? (m.attachments ?? []) : pendingAttachments(m);
  return (
    <li class={`msg ${mine ? "mine" : "theirs"}`} data-client-msg-id={m.clientMsgId} data-seq={"seq" in m ? m.seq : undefined}>
      {sender ? <span class="sender">{sender}</span> : null}
      {m.body || attachments.length === 0 ? <span class="body">{m.body}</span> : null}
      {attachments.length ? (
        <ul class="attachments">
          {attachments.map((a) => (
            <AttachmentItem key={a.id} attachment={a} />
          ))}
        </ul>
      ) : null}
      <span class="meta">
        <time>{formatTime(m.createdAt)}</time>
        {status ? (
          <span class={`tick ${status}`} data-status={status} title={detail ?? status}>
            {TICKS[status] ?? ""}
          </span>
        ) : null}
      </span>
    </li>
  );
});

/** Name and size; an image shows its inline preview at its measured size (the file itself is not fetched). */
function AttachmentItem({ attachment: a }: { attachment: Attachment }) {
  const preview = a.contentType.startsWith("image/") && a.preview?.startsWith("data:image/") ? a.preview : null;
  return (
    <li class="attachment" data-attachment-id={a.id}>
      {preview ? (
        // The uploader's measured size, kept when the (smaller, maybe differently shaped) preview loads.
        <img src={preview} alt={a.name} width={a.width} height={a.height} style={a.width && a.height ? { aspectRatio: `${a.width} / ${a.height}` } : undefined} />
      ) : null}
      <span class="name">{a.name}</span> <span class="size">{formatSize(a.size)}</span>
    </li>
  );
}
