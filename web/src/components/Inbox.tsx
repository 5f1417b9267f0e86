// The conversation list: newest activity first, unread counts, DM peers' presence; start a DM or a group.
import { useSignal } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import type { InboxEntry, PublicUser } from "../../../client/src/index";
import { client, errorText, isOnline } from "../app";
import { formatTime } from "../format";

/** Live inbox events are drawn once the first page has loaded (until then the list says "Loading…"). */
let inboxLoaded = false;

function entryTitle(e: InboxEntry): string {
  return e.type === "direct" ? (e.peer?.username ?? "direct message") : (e.title ?? "group");
}

export function Inbox({ me }: { me: PublicUser }) {
  /** null until the first page (or a live update after one) arrives. */
  const entries = useSignal<InboxEntry[] | null>(null);
  const totalUnread = useSignal(0);
  const status = useSignal("Loading…");
  const error = useSignal("");

  useEffect(() => {
    const show = () => {
      const s = client.inboxState;
      entries.value = s.entries;
      totalUnread.value = s.totalUnread;
      status.value = s.entries.length ? "" : "No conversations yet. Start one below.";
    };
    let off = false;
    void client.inbox({ limit: 50 }).then(
      () => {
        inboxLoaded = true;
        if (!off) show();
      },
      (err: unknown) => {
        if (!off) status.value = errorText(err);
      },
    );
    void client.flushOutbox().catch(() => {});
    const offInbox = client.on("inbox", () => inboxLoaded && show());
    return () => {
      off = true;
      offInbox();
    };
  }, []);

  // Follow the presence of every DM peer in the list (online dots); re-subscribe only when the set changes.
  const peers = [...new Set((entries.value ?? []).flatMap((e) => (e.peer ? [e.peer.userId] : [])))].sort().join();
  useEffect(() => (peers ? client.subscribePresence(peers.split(",")) : undefined), [peers]);

  const act = (fn: () => Promise<void>) => async (e: Event) => {
    e.preventDefault();
    error.value = "";
    try {
      await fn();
    } catch (err) {
      error.value = errorText(err);
    }
  };
  const dmInput = useRef<HTMLInputElement>(null);
  const groupTitle = useRef<HTMLInputElement>(null);
  const groupMembers = useRef<HTMLInputElement>(null);
  const startDm = act(async () => {
    const c = await client.createDirectByUsername(dmInput.current!.value.trim().toLowerCase());
    location.hash = `#/c/${c.id}`;
  });
  const createGroup = act(async () => {
    const names = groupMembers.current!.value.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
    const users = await Promise.all(names.map((n) => client.findUser(n)));
    const c = await client.createGroup(groupTitle.current!.value.trim(), users.map((u) => u.id));
    location.hash = `#/c/${c.id}`;
  });

  return (
    <main class="inbox-view">
      <header>
        <h1>
          Chats{" "}
          <span class="badge total" data-testid="total-unread" hidden={totalUnread.value === 0}>
            {totalUnread}
          </span>
        </h1>
        <span class="me" data-testid="me">
          {me.username}
        </span>
        <button class="link" data-action="logout" onClick={() => (client.close(), client.auth.logout())}>
          Log out
        </button>
      </header>
      <ul class="inbox" data-testid="inbox">
        {(entries.value ?? []).map((e) => (
          <InboxItem key={e.conversationId} entry={e} me={me} />
        ))}
      </ul>
      <p class="hint">{status}</p>
      <section class="new">
        <form onSubmit={startDm}>
          <label for="dm-username">Message someone</label>
          <div class="row">
            <input ref={dmInput} id="dm-username" placeholder="username" autocomplete="off" required />
            <button data-action="start-dm">Start</button>
          </div>
        </form>
        <form onSubmit={createGroup}>
          <label for="group-title">New group</label>
          <input ref={groupTitle} id="group-title" placeholder="group name" required />
          <div class="row">
            <input ref={groupMembers} id="group-members" placeholder="usernames, comma separated" autocomplete="off" />
            <button data-action="create-group">Create</button>
          </div>
        </form>
        <p class="error" role="alert">{error}</p>
      </section>
    </main>
  );
}

function InboxItem({ entry: e, me }: { entry: InboxEntry; me: PublicUser }) {
  const title = entryTitle(e);
  const online = e.peer ? isOnline(e.peer.userId) : false;
  return (
    <li data-conversation-id={e.conversationId}>
      <a href={`#/c/${e.conversationId}`}>
        <span class={`avatar ${e.type}`}>
          {title.slice(0, 1).toUpperCase()}
          {e.peer ? <span class={online ? "dot online" : "dot"} data-online={String(online)} /> : null}
        </span>
        <span class="main">
          <span class="title">{title}</span>
          <span class="preview">{e.lastMessage ? (e.lastMessage.senderId === me.id ? `You: ${e.lastMessage.preview}` : e.lastMessage.preview) : "No messages yet"}</span>
        </span>
        <span class="meta">
          {e.lastMessage ? <time>{formatTime(e.lastMessage.createdAt)}</time> : null}
          {(e.unreadMentions ?? 0) > 0 ? (
            <span class="badge mention" data-testid="unread-mentions" title={`${e.unreadMentions} unread mention${e.unreadMentions === 1 ? "" : "s"}`}>
              @
            </span>
          ) : null}
          {e.unread > 0 ? (
            <span class="badge" data-testid="unread">
              {e.unread}
            </span>
          ) : null}
        </span>
      </a>
    </li>
  );
}
