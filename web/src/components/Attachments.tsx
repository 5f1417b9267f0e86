// A message's files as they render: an image inline from its signed URL (asked for near the viewport),
// its preview as the placeholder and a lightbox on a click; another file as name, size and a download
// link; and the files of a message still in the outbox (pendingAttachments).
import type { ChatMessage, OutboxItem } from "../../../client/src/index";
import { useEffect, useRef, useState } from "preact/hooks";
import { signedUrl } from "../attachments";
import { formatSize } from "../format";

export type Attachment = NonNullable<ChatMessage["attachments"]>[number];

/** A message still in the outbox: its files as they will be sent (a file not uploaded yet shows its name and size). */
export function pendingAttachments(item: OutboxItem): Attachment[] {
  // Files already uploaded are known by id only until the message is stored: they show then.
  return (item.attachments ?? []).flatMap((a, i) =>
    "file" in a
      ? [{ id: a.attachmentId ?? `pending-${i}`, name: a.name, size: a.file.size, contentType: a.contentType ?? a.file.type, width: a.width, height: a.height, preview: a.preview }]
      : [],
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
export function AttachmentItem({ attachment: a, stored }: { attachment: Attachment; stored: boolean }) {
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
