// edgechat web: sign in, inbox, direct messages and groups. Plain TypeScript on the SDK; hash routes:
//   #/login   #/   #/c/<conversation id>
import { ApiError, ChatClient, type ChatMessage, type ConnectionState, type Conversation, type InboxEntry, type OutboxItem, type PublicUser } from "../../client/src/index";
import { formatTime, h } from "./dom";
import { loadSession, saveSession } from "./store";

const root = document.getElementById("app")!;
const client = new ChatClient({
  baseUrl: location.origin,
  session: loadSession(),
  // Tabs share one session and a refresh token works once: refresh under a lock, adopt each other's.
  sharedSession: {
    lock: "locks" in navigator ? <T>(fn: () => Promise<T>) => navigator.locks.request("edgechat-refresh", () => fn()) : undefined,
    reload: loadSession,
  },
});
client.auth.on("change", (s) => {
  saveSession(s);
  if (!s) location.hash = "#/login";
});
window.addEventListener("storage", (e) => {
  if (e.key === "edgechat.session") client.auth.adopt(loadSession());
});

/** Live inbox events are drawn once the first page has loaded (until then the list says "Loading…"). */
let inboxLoaded = false;
let cleanup: () => void = () => {};

function route(): void {
  cleanup();
  cleanup = () => {};
  const me = client.auth.user;
  const hash = location.hash || "#/";
  if (!me) {
    if (hash !== "#/login") return void (location.hash = "#/login");
    return render(loginView());
  }
  client.connect();
  const m = /^#\/c\/([A-Za-z0-9_-]{1,64})$/.exec(hash);
  if (m) return conversationView(me, m[1]!);
  if (hash === "#/login") return void (location.hash = "#/");
  inboxView(me);
}

function render(view: HTMLElement): void {
  root.replaceChildren(view);
}

function errorText(err: unknown): string {
  if (err instanceof ApiError) return err.code === "network_error" ? "You are offline." : err.message;
  return String(err);
}

// ------------------------------------------------------------------ login

function loginView(): HTMLElement {
  const username = h("input", { id: "username", name: "username", autocomplete: "username", placeholder: "username", required: true, minlength: 3 });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", placeholder: "password", required: true, minlength: 8 });
  const error = h("p", { class: "error", role: "alert" });
  const submit = async (mode: "signup" | "login") => {
    error.textContent = "";
    if (!username.reportValidity() || !password.reportValidity()) return;
    try {
      await (mode === "signup" ? client.auth.signup(username.value, password.value) : client.auth.login(username.value, password.value));
      location.hash = "#/";
    } catch (err) {
      error.textContent = errorText(err);
    }
  };
  return h(
    "main",
    { class: "login" },
    h("h1", {}, "edgechat"),
    h(
      "form",
      { onsubmit: (e: Event) => (e.preventDefault(), void submit("login")) },
      username,
      password,
      h("div", { class: "row" },
        h("button", { type: "submit", "data-action": "login" }, "Log in"),
        h("button", { type: "button", class: "secondary", "data-action": "signup", onclick: () => void submit("signup") }, "Sign up"),
      ),
      error,
    ),
  );
}

// ------------------------------------------------------------------ inbox

function entryTitle(e: InboxEntry): string {
  return e.type === "direct" ? (e.peer?.username ?? "direct message") : (e.title ?? "group");
}

function inboxView(me: PublicUser): void {
  const list = h("ul", { class: "inbox", "data-testid": "inbox" });
  const status = h("p", { class: "hint" }, "Loading…");
  const total = h("span", { class: "badge total", "data-testid": "total-unread", hidden: true });
  const error = h("p", { class: "error", role: "alert" });
  let entries: InboxEntry[] = [];
  let unsubscribePresence = () => {};

  const draw = () => {
    const t = client.inboxState.totalUnread;
    total.textContent = String(t);
    total.hidden = t === 0;
    status.textContent = entries.length ? "" : "No conversations yet. Start one below.";
    list.replaceChildren(
      ...entries.map((e) => {
        const online = e.peer ? client.presenceOf(e.peer.userId)?.online === true : false;
        return h(
          "li",
          { "data-conversation-id": e.conversationId },
          h(
            "a",
            { href: `#/c/${e.conversationId}` },
            h("span", { class: `avatar ${e.type}` }, entryTitle(e).slice(0, 1).toUpperCase(), e.peer ? h("span", { class: online ? "dot online" : "dot", "data-online": String(online) }) : null),
            h("span", { class: "main" },
              h("span", { class: "title" }, entryTitle(e)),
              h("span", { class: "preview" }, e.lastMessage ? (e.lastMessage.senderId === me.id ? `You: ${e.lastMessage.preview}` : e.lastMessage.preview) : "No messages yet"),
            ),
            h("span", { class: "meta" },
              e.lastMessage ? h("time", {}, formatTime(e.lastMessage.createdAt)) : null,
              e.unread > 0 ? h("span", { class: "badge", "data-testid": "unread" }, String(e.unread)) : null,
            ),
          ),
        );
      }),
    );
  };

  let followed = "";
  /** Follow the presence of every DM peer in the list (online dots); re-subscribe only when the set changes. */
  const followPeers = () => {
    const peers = [...new Set(entries.flatMap((e) => (e.peer ? [e.peer.userId] : [])))].sort();
    if (peers.join() === followed) return;
    followed = peers.join();
    const previous = unsubscribePresence;
    unsubscribePresence = client.subscribePresence(peers);
    previous();
  };

  const refresh = async () => {
    try {
      await client.inbox({ limit: 50 });
      inboxLoaded = true;
      entries = client.inboxState.entries;
      followPeers();
      draw();
    } catch (err) {
      status.textContent = errorText(err);
    }
  };

  const dmInput = h("input", { id: "dm-username", placeholder: "username", autocomplete: "off", required: true });
  const groupTitle = h("input", { id: "group-title", placeholder: "group name", required: true });
  const groupMembers = h("input", { id: "group-members", placeholder: "usernames, comma separated", autocomplete: "off" });
  const act = (fn: () => Promise<void>) => async (e: Event) => {
    e.preventDefault();
    error.textContent = "";
    try {
      await fn();
    } catch (err) {
      error.textContent = errorText(err);
    }
  };

  render(
    h(
      "main",
      { class: "inbox-view" },
      h("header", {},
        h("h1", {}, "Chats ", total),
        h("span", { class: "me", "data-testid": "me" }, me.username),
        h("button", { class: "link", "data-action": "logout", onclick: () => (client.close(), client.auth.logout()) }, "Log out"),
      ),
      list,
      status,
      h("section", { class: "new" },
        h("form", { onsubmit: act(async () => {
          const c = await client.createDirectByUsername(dmInput.value.trim().toLowerCase());
          location.hash = `#/c/${c.id}`;
        }) }, h("label", { for: "dm-username" }, "Message someone"), h("div", { class: "row" }, dmInput, h("button", { "data-action": "start-dm" }, "Start"))),
        h("form", { onsubmit: act(async () => {
          const names = groupMembers.value.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
          const users = await Promise.all(names.map((n) => client.findUser(n)));
          const c = await client.createGroup(groupTitle.value.trim(), users.map((u) => u.id));
          location.hash = `#/c/${c.id}`;
        }) }, h("label", { for: "group-title" }, "New group"), groupTitle, h("div", { class: "row" }, groupMembers, h("button", { "data-action": "create-group" }, "Create"))),
        error,
      ),
    ),
  );
  void refresh();
  void client.flushOutbox().catch(() => {});
  const offInbox = client.on("inbox", () => {
    if (!inboxLoaded) return;
    entries = client.inboxState.entries;
    followPeers();
    draw();
  });
  const offPresence = client.on("presence", draw);
  cleanup = () => {
    offInbox();
    offPresence();
    unsubscribePresence();
  };
}

// ------------------------------------------------------------------ conversation

// Plain characters (no emoji): they render with any system font, headless Chromium included.
const TICKS: Record<string, string> = { pending: "○", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "!" };

function bannerText(state: ConnectionState): string | null {
  if (state === "open" || state === "closed") return null;
  if (state === "offline" || !navigator.onLine) return "Offline. Messages will be sent when you are back online.";
  return state === "connecting" ? "Connecting…" : "Reconnecting…";
}

function conversationView(me: PublicUser, id: string): void {
  const title = h("h1", { "data-testid": "title" }, "…");
  const dot = h("span", { class: "dot", hidden: true });
  const sub = h("span", { class: "sub" });
  const banner = h("div", { class: "banner", role: "status", "data-testid": "banner", hidden: true });
  const list = h("ol", { class: "messages", "data-testid": "messages" });
  const older = h("p", { class: "hint older" });
  const scroller = h("div", { class: "scroller" }, older, list);
  const typing = h("p", { class: "typing", "data-testid": "typing" });
  const input = h("input", { id: "composer", placeholder: "Message", autocomplete: "off", enterkeyhint: "send", maxlength: 4000 });
  const error = h("p", { class: "error", role: "alert" });
  const addInput = h("input", { id: "add-member", placeholder: "add member by username", autocomplete: "off" });
  const addForm = h("form", { class: "add row", hidden: true }, addInput, h("button", { "data-action": "add-member" }, "Add"));
  const nodes = new Map<string, HTMLLIElement>();
  let conv: Conversation | null = null;
  let closed = false;
  let unsubscribePresence = () => {};
  let frame = 0;

  const names = () => new Map((conv?.info?.members ?? []).map((m) => [m.userId, m.username]));

  const item = (key: string, m: ChatMessage | OutboxItem, status: string | null, sender: string | null) => {
    let li = nodes.get(key);
    if (!li) {
      li = h("li", { class: "msg" });
      nodes.set(key, li);
    }
    const mine = "senderId" in m ? m.senderId === me.id : m.userId === me.id;
    li.className = `msg ${mine ? "mine" : "theirs"}`;
    li.dataset.clientMsgId = m.clientMsgId;
    if ("seq" in m) li.dataset.seq = String(m.seq);
    const counts = "seq" in m && conv?.info?.type === "group" && mine ? conv.receiptCounts(m.seq) : null;
    li.replaceChildren(
      sender ? h("span", { class: "sender" }, sender) : "",
      h("span", { class: "body" }, m.body),
      h("span", { class: "meta" },
        h("time", {}, formatTime(m.createdAt)),
        status ? h("span", { class: `tick ${status}`, "data-status": status, title: counts ? `delivered to ${counts.delivered}/${counts.of}, read by ${counts.read}/${counts.of}` : status }, TICKS[status] ?? "") : null,
      ),
    );
    return li;
  };

  const draw = () => {
    frame = 0;
    if (!conv || closed) return;
    const info = conv.info;
    const group = info?.type === "group";
    const peer = info?.type === "direct" ? info.members.find((m) => m.userId !== me.id) : undefined;
    title.textContent = group ? (info?.title ?? "group") : (peer?.username ?? "…");
    sub.textContent = group ? `${info?.members.length ?? 0} members` : "";
    const online = peer ? client.presenceOf(peer.userId)?.online === true : false;
    dot.hidden = !peer;
    dot.className = online ? "dot online" : "dot";
    dot.dataset.online = String(online);
    const myRole = info?.members.find((m) => m.userId === me.id)?.role;
    addForm.hidden = !group || myRole === "member";

    const text = bannerText(conv.state);
    banner.hidden = text === null;
    banner.textContent = text ?? "";
    older.textContent = conv.hasOlder ? "Scroll up for older messages" : "Beginning of the conversation";

    const who = names();
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
    const items: HTMLLIElement[] = [];
    for (const m of conv.messages) {
      const mine = m.senderId === me.id;
      items.push(item(m.clientMsgId + m.senderId, m, mine ? conv.statusOf(m) : null, group && !mine ? (who.get(m.senderId) ?? "someone") : null));
    }
    for (const p of conv.pending) items.push(item(p.clientMsgId + me.id, p, "pending", null));
    for (const f of conv.failed.values()) items.push(item(f.item.clientMsgId + me.id, f.item, "failed", null));
    list.replaceChildren(...items);
    const t = conv.typing;
    typing.textContent = t.length === 0 ? "" : t.length === 1 ? `${t[0]!.username} is typing…` : `${t.map((u) => u.username).join(", ")} are typing…`;
    if (atBottom) scroller.scrollTop = scroller.scrollHeight;
    // A tall screen may show the whole first page without a scrollbar: then nothing can scroll up.
    if (conv.hasOlder && scroller.scrollHeight <= scroller.clientHeight) void loadOlder().catch(() => {});
    markRead();
  };
  const schedule = () => {
    frame ||= requestAnimationFrame(draw);
  };

  const markRead = () => {
    if (conv && document.visibilityState === "visible" && conv.lastSeq > 0) conv.markRead(conv.lastSeq);
  };

  const loadOlder = async () => {
    if (!conv?.hasOlder) return;
    const before = scroller.scrollHeight;
    const got = await conv.loadOlder();
    if (got.length === 0) return;
    draw();
    // Keep the message the user was looking at in place.
    scroller.scrollTop += scroller.scrollHeight - before;
  };

  render(
    h(
      "main",
      { class: "conversation-view" },
      h("header", {},
        h("a", { href: "#/", class: "back", "data-action": "back", "aria-label": "Back to chats" }, "‹"),
        h("div", { class: "who" }, h("div", { class: "name" }, title, dot), sub),
      ),
      banner,
      addForm,
      scroller,
      typing,
      h(
        "form",
        { class: "composer row", onsubmit: (e: Event) => {
          e.preventDefault();
          const body = input.value.trim();
          if (!body || !conv) return;
          input.value = "";
          conv.setTyping(false);
          void conv.send(body).then(() => {
            scroller.scrollTop = scroller.scrollHeight;
          });
        } },
        input,
        h("button", { "data-action": "send", "aria-label": "Send" }, "Send"),
      ),
      error,
    ),
  );
  input.addEventListener("input", () => conv?.setTyping(input.value.length > 0));
  scroller.addEventListener("scroll", () => {
    if (scroller.scrollTop < 120) void loadOlder().catch((err: unknown) => (error.textContent = errorText(err)));
  });
  addForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const name = addInput.value.trim().toLowerCase();
    if (!name) return;
    void (async () => {
      try {
        const u = await client.findUser(name);
        const info = await client.addMembers(id, [u.id]);
        if (conv) conv.info = info;
        addInput.value = "";
        schedule();
      } catch (err) {
        error.textContent = errorText(err);
      }
    })();
  });
  const onVisible = () => markRead();
  document.addEventListener("visibilitychange", onVisible);
  const offPresence = client.on("presence", schedule);

  void client.open(id).then(
    (c) => {
      if (closed) return client.closeConversation(id);
      conv = c;
      const offs = [c.on("change", schedule), c.on("error", (e) => {
        if ("terminal" in e && e.terminal) error.textContent = e.code === 4403 ? "You are not a member of this conversation." : e.reason;
      })];
      unsubscribePresence = client.subscribePresence((c.info?.members ?? []).map((m) => m.userId).filter((u) => u !== me.id));
      draw();
      scroller.scrollTop = scroller.scrollHeight;
      input.focus();
      const prev = cleanup;
      cleanup = () => {
        prev();
        for (const off of offs) off();
      };
    },
    (err: unknown) => {
      title.textContent = "Unavailable";
      error.textContent = errorText(err);
    },
  );
  cleanup = () => {
    closed = true;
    if (frame) cancelAnimationFrame(frame);
    document.removeEventListener("visibilitychange", onVisible);
    offPresence();
    unsubscribePresence();
    conv?.setTyping(false);
    // Keep the conversation open in the client for a fast way back, but only one at a time.
    client.closeConversation(id);
  };
}

window.addEventListener("hashchange", route);
window.addEventListener("online", () => void client.flushOutbox().catch(() => {}));
route();
