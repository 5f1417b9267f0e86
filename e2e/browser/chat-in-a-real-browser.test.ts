// The web client in Debian's Chromium (playwright-core) against the real Worker on 127.0.0.1:
// two users DM (typing, read ticks, reload, offline send delivered exactly once, outbox across a
// reload, Enter while a conversation is still loading, attachments), then a group of three, where
// a promotion shows up without a reload. Screenshots land in test-results/browser/.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { ROOT } from "../server.ts";
import { HAS_CHROMIUM, SHOTS, SKIP_REASON, eventually, launchChromium } from "./browser.ts";

if (!HAS_CHROMIUM) console.warn(`\n[browser e2e] SKIPPED: ${SKIP_REASON}\n`);

const PASSWORD = "correct horse battery";
const PHONE = { width: 390, height: 844 };
const sfx = Date.now().toString(36).slice(-6);
const names = { alice: `alice_${sfx}`, bob: `bob_${sfx}`, carol: `carol_${sfx}` };

let browser: Browser | null = null;
const base = inject("baseUrl");
const ctx: Record<"alice" | "bob" | "carol", BrowserContext> = {} as never;
const page: Record<"alice" | "bob" | "carol", Page> = {} as never;
let dmHash = "";
let groupHash = "";


const count = (p: Page, text: string) => p.locator("[data-testid=messages] .msg .body").getByText(text, { exact: true }).count();
const shot = (p: Page, name: string) => p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

async function send(p: Page, text: string): Promise<void> {
  await p.fill("#composer", text);
  await p.click("[data-action=send]");
}

async function signUp(who: keyof typeof names): Promise<void> {
  const p = page[who];
  await p.goto(`${base}/#/login`);
  await p.fill("#username", names[who]);
  await p.fill("#password", PASSWORD);
  await p.click("[data-action=signup]");
  await p.locator("[data-testid=me]").getByText(names[who]).waitFor({ timeout: 10_000 });
}

if (!HAS_CHROMIUM) it.skip(`SKIPPED all browser tests: ${SKIP_REASON}`, () => {});

describe.skipIf(!HAS_CHROMIUM)("web client in Chromium", () => {
  beforeAll(async () => {
    browser = await launchChromium();
    for (const who of ["alice", "bob", "carol"] as const) {
      ctx[who] = await browser.newContext({ viewport: PHONE });
      page[who] = await ctx[who].newPage();
    }
    await Promise.all((["alice", "bob", "carol"] as const).map(signUp));
  });

  afterAll(async () => {
    await browser?.close();
  });

  // The tests share the three users' pages: a test that fails while a user is offline must not leave them offline
  // for every test after it (one failure, not a cascade).
  afterEach(async () => {
    await Promise.all(Object.values(ctx).map((c) => c.setOffline(false)));
  });

  it("alice starts a DM by username and sends the first message", async () => {
    const a = page.alice;
    await a.fill("#dm-username", names.bob);
    await a.click("[data-action=start-dm]");
    await a.waitForURL(/#\/c\/dm_/);
    dmHash = new URL(a.url()).hash;
    await a.locator("[data-testid=title]").getByText(names.bob).waitFor();
    await send(a, "hello bob");
    await eventually("alice's message acknowledged (tick past pending)", async () =>
      (await a.locator(".msg.mine .tick").first().getAttribute("data-status")) !== "pending" && (await count(a, "hello bob")) === 1,
    );
  });

  it("bob's inbox shows the DM with a preview, an unread badge and alice online", async () => {
    const b = page.bob;
    try {
      await eventually("the DM in bob's inbox (GET /v1/me/conversations or an inbox_update frame)", async () => {
        await b.evaluate(() => location.hash === "#/" || (location.hash = "#/"));
        return (await b.locator(`[data-testid=inbox] li a[href="${dmHash}"]`).count()) === 1;
      });
      const entry = b.locator(`[data-testid=inbox] li a[href="${dmHash}"]`);
      await eventually("“hello bob” as the DM's preview (inbox_update)", async () => (await entry.locator(".preview").textContent()) === "hello bob");
      await eventually("unread badge 1 on the DM", async () => (await entry.locator("[data-testid=unread]").textContent()) === "1");
      await eventually("alice's online dot (presence)", async () => (await entry.locator(".dot").getAttribute("data-online")) === "true");
    } finally {
      await shot(b, "inbox-bob");
    }
  });

  it("bob opens the DM and they exchange messages, at a phone's width", async () => {
    const [a, b] = [page.alice, page.bob];
    // From the inbox, the way a user would.
    await b.locator(`[data-testid=inbox] li a[href="${dmHash}"]`).click();
    await b.waitForURL((u) => u.hash === dmHash);
    await eventually("bob sees alice's first message", async () => (await count(b, "hello bob")) === 1);
    await send(b, "hi alice");
    await eventually("alice gets bob's reply", async () => (await count(a, "hi alice")) === 1);
    await send(a, "how are you?");
    await send(b, "great, thanks");
    await eventually("both see all four messages in order", async () => {
      const want = ["hello bob", "hi alice", "how are you?", "great, thanks"];
      const [x, y] = await Promise.all([a, b].map((p) => p.locator("[data-testid=messages] .msg .body").allTextContents()));
      return JSON.stringify(x) === JSON.stringify(want) && JSON.stringify(y) === JSON.stringify(want);
    });
    for (const p of [a, b]) expect(await p.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
    await shot(a, "conversation-alice");
    await shot(b, "conversation-bob");
  });

  it("bob sees alice typing", async () => {
    const [a, b] = [page.alice, page.bob];
    await a.locator("#composer").pressSequentially("still typ", { delay: 20 });
    try {
      await eventually("“alice is typing…” on bob's screen (typing frames)", async () =>
        ((await b.locator("[data-testid=typing]").textContent()) ?? "").includes(`${names.alice} is typing`),
      );
      await shot(b, "typing-bob");
    } finally {
      await a.fill("#composer", "");
    }
  });

  it("alice sees the read tick on her messages", async () => {
    const a = page.alice;
    const tick = a.locator(".msg.mine", { hasText: "hello bob" }).locator(".tick");
    try {
      await eventually("read tick on “hello bob” (receipts frames)", async () => (await tick.getAttribute("data-status")) === "read");
    } finally {
      await shot(a, "ticks-alice");
    }
  });

  it("bob reloads and the history is still there", async () => {
    const b = page.bob;
    await b.reload();
    await eventually("history after reload", async () => (await count(b, "hello bob")) === 1 && (await count(b, "great, thanks")) === 1);
  });

  it("older history loads when bob scrolls up", async () => {
    const b = page.bob;
    // 80 more messages from alice over REST (with her browser session's token), so the DM is longer than a page.
    const token = await page.alice.evaluate(() => (JSON.parse(localStorage.getItem("edgechat.session") ?? "{}") as { accessToken?: string }).accessToken);
    const id = dmHash.slice("#/c/".length);
    for (let i = 1; i <= 80; i++) {
      const res = await fetch(`${base}/v1/conversations/${id}/messages`, {
        method: "POST",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ clientMsgId: `bulk-${i}`, body: `bulk ${i}` }),
      });
      expect(res.ok).toBe(true);
    }
    await b.reload();
    await eventually("the newest page is shown", async () => (await count(b, "bulk 80")) === 1);
    expect(await count(b, "hello bob")).toBe(0);
    await eventually("scrolling up loads older pages down to the first message", async () => {
      await b.locator(".scroller").evaluate((el) => el.scrollTo(0, 0));
      return (await count(b, "hello bob")) === 1;
    });
    const bodies = await b.locator("[data-testid=messages] .msg .body").allTextContents();
    expect(bodies.length).toBe(84);
    expect(bodies.slice(0, 5)).toEqual(["hello bob", "hi alice", "how are you?", "great, thanks", "bulk 1"]);
  });

  it("bob goes offline, sends, comes back: alice receives the message exactly once", async () => {
    const [a, b] = [page.alice, page.bob];
    await ctx.bob.setOffline(true);
    await b.locator("[data-testid=banner]").waitFor({ state: "visible" });
    await send(b, "sent while offline");
    await b.locator(".msg.mine", { hasText: "sent while offline" }).locator(".tick[data-status=pending]").waitFor();
    await shot(b, "offline-bob");
    await new Promise((r) => setTimeout(r, 500));
    expect(await count(a, "sent while offline")).toBe(0);

    await ctx.bob.setOffline(false);
    await eventually("alice receives the queued message", async () => (await count(a, "sent while offline")) === 1);
    await eventually("bob's banner hides and the message leaves pending", async () =>
      (await b.locator("[data-testid=banner]").isHidden()) &&
      (await b.locator(".msg.mine", { hasText: "sent while offline" }).locator(".tick").getAttribute("data-status")) !== "pending",
    );
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await count(a, "sent while offline")).toBe(1);
    expect(await count(b, "sent while offline")).toBe(1);
  });

  it("a message queued offline survives closing the page (IndexedDB outbox) and arrives once", async () => {
    const a = page.alice;
    await ctx.bob.setOffline(true);
    await page.bob.locator("[data-testid=banner]").waitFor({ state: "visible" });
    await send(page.bob, "queued across a reload");
    await page.bob.locator(".tick[data-status=pending]").waitFor();
    await page.bob.close();
    await ctx.bob.setOffline(false);
    page.bob = await ctx.bob.newPage();
    await page.bob.goto(`${base}/${dmHash}`);
    await eventually("alice receives the message queued before the reload", async () => (await count(a, "queued across a reload")) === 1);
    await eventually("bob's reopened page shows it sent", async () =>
      (await count(page.bob, "queued across a reload")) === 1 && (await page.bob.locator(".tick[data-status=pending]").count()) === 0,
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(await count(a, "queued across a reload")).toBe(1);
  });

  it("Enter while the conversation is still loading queues the message: the box clears, it shows pending and arrives once", async () => {
    const [a, b] = [page.alice, page.bob];
    const id = dmHash.slice("#/c/".length);
    // Hold the DM's history page, so bob's conversation stays loading until the test lets it go.
    let release = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const history = (u: URL) => u.pathname === `/v1/conversations/${id}/messages`;
    await b.route(history, async (route) => {
      await gate;
      await route.continue();
    });
    try {
      await b.reload();
      await b.locator("#composer").waitFor();
      await b.fill("#composer", "typed while loading");
      await b.press("#composer", "Enter");
      expect(await b.locator("[data-testid=title]").textContent()).toBe("…"); // still loading when Enter was pressed
      expect(await b.inputValue("#composer")).toBe("");
      await b.locator(".msg.mine", { hasText: "typed while loading" }).locator(".tick[data-status=pending]").waitFor();
      await shot(b, "queued-while-loading-bob");
    } finally {
      release();
    }
    await eventually("alice receives the message queued while loading", async () => (await count(a, "typed while loading")) === 1);
    await eventually("bob's page shows it once, sent", async () =>
      (await count(b, "typed while loading")) === 1 &&
      (await b.locator(".msg.mine", { hasText: "typed while loading" }).locator(".tick").getAttribute("data-status")) !== "pending",
    );
    await b.unroute(history);
    await new Promise((r) => setTimeout(r, 500));
    expect(await count(a, "typed while loading")).toBe(1);
    expect(await count(b, "typed while loading")).toBe(1);
  });

  it("a message with attachments shows each one's name and size, and an image its preview at its size", async () => {
    const b = page.bob;
    const { accessToken } = await page.alice.evaluate(() => JSON.parse(localStorage.getItem("edgechat.session") ?? "{}") as { accessToken: string });
    const id = dmHash.slice("#/c/".length);
    // A 1x1 PNG: the server checks an image's first bytes and a preview's type.
    const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    const upload = async (name: string, type: string, body: Uint8Array<ArrayBuffer>, extra: Record<string, string> = {}) => {
      const res = await fetch(`${base}/v1/conversations/${id}/attachments`, {
        method: "POST",
        headers: { Authorization: `Bearer ${accessToken}`, "Content-Type": type, "X-Attachment-Name": encodeURIComponent(name), ...extra },
        body,
      });
      expect(res.status, await res.clone().text()).toBe(201);
      return ((await res.json()) as { attachment: { id: string } }).attachment.id;
    };
    const image = await upload("dot.png", "image/png", new Uint8Array(Buffer.from(png, "base64")), {
      "X-Attachment-Width": "120",
      "X-Attachment-Height": "90",
      "X-Attachment-Preview": `data:image/png;base64,${png}`,
    });
    const notes = await upload("notes from café.txt", "text/plain", new TextEncoder().encode("x".repeat(2_500)));
    const res = await fetch(`${base}/v1/conversations/${id}/messages`, {
      method: "POST",
      headers: { Authorization: `Bearer ${accessToken}`, "Content-Type": "application/json" },
      body: JSON.stringify({ clientMsgId: `attach-${sfx}`, body: "", attachments: [image, notes] }),
    });
    expect(res.ok).toBe(true);
    const msg = b.locator(".msg.theirs", { has: b.locator(".attachment") }).last();
    try {
      await msg.waitFor();
      expect(await msg.locator(".attachment .name").allTextContents()).toEqual(["dot.png", "notes from café.txt"]);
      expect(await msg.locator(".attachment .size").allTextContents()).toEqual(["70 B", "2.5 kB"]);
      const img = msg.locator(".attachment img");
      expect([await img.getAttribute("width"), await img.getAttribute("height")]).toEqual(["120", "90"]);
      expect(await img.getAttribute("style")).toContain(`data:image/png;base64,${png}`); // the preview as placeholder
      await eventually("the image from its signed URL, still shown at 120x90", async () =>
        /\/v1\/attachments\/[^?]+\?/.test((await img.getAttribute("src")) ?? "") &&
        (await img.evaluate((el: HTMLImageElement) => el.complete && el.naturalWidth === 1 && el.width === 120 && el.height === 90)),
      );
      expect(await msg.locator(".attachment", { hasText: "notes from café.txt" }).locator("a.download").getAttribute("download")).toBe("notes from café.txt");
      expect(await msg.locator(".body").count()).toBe(0); // attachments only: no empty body line
    } finally {
      await shot(b, "attachments-bob");
    }
  });

  it("alice drops an image on the conversation: a progress bar, then bob sees it inline at its size, and a lightbox", async () => {
    const [a, b] = [page.alice, page.bob];
    const id = dmHash.slice("#/c/".length);
    await a.locator("[data-testid=title]").getByText(names.bob).waitFor();
    // Hold alice's upload, so the progress bar is on screen until the test lets it go.
    let release = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const uploads = (u: URL) => u.pathname === `/v1/conversations/${id}/attachments`;
    await a.route(uploads, async (route) => {
      await gate;
      await route.continue();
    });
    const before = await b.locator(".msg.theirs .attachment.image").count();
    try {
      // A 40x30 PNG drawn in the page, dropped the way a file manager drops it (a DataTransfer with Files).
      const dt = await a.evaluateHandle(async () => {
        const canvas = document.createElement("canvas");
        canvas.width = 40;
        canvas.height = 30;
        const g = canvas.getContext("2d")!;
        g.fillStyle = "#c33";
        g.fillRect(0, 0, 40, 30);
        const blob = await new Promise<Blob>((r) => canvas.toBlob((x) => r(x!), "image/png"));
        const data = new DataTransfer();
        data.items.add(new File([blob], "red.png", { type: "image/png" }));
        return data;
      });
      const view = a.locator("[data-testid=conversation]");
      await view.dispatchEvent("dragenter", { dataTransfer: dt });
      await view.dispatchEvent("dragover", { dataTransfer: dt });
      await view.dispatchEvent("drop", { dataTransfer: dt });
      const bar = a.locator("[data-testid=uploads] .upload", { hasText: "red.png" }).locator("progress");
      await bar.waitFor({ state: "visible" });
      expect(Number(await bar.getAttribute("max"))).toBeGreaterThan(0);
      await shot(a, "upload-progress-alice");
    } finally {
      release();
    }
    await a.locator("[data-testid=uploads]").waitFor({ state: "detached" });
    await a.unroute(uploads);

    const img = b.locator(".msg.theirs .attachment.image", { hasText: "red.png" }).last().locator("img");
    await eventually("bob sees alice's dropped image", async () => (await b.locator(".msg.theirs .attachment.image").count()) === before + 1);
    expect([await img.getAttribute("width"), await img.getAttribute("height")]).toEqual(["40", "30"]);
    expect(await img.getAttribute("loading")).toBe("lazy");
    expect(await img.getAttribute("style")).toContain("data:image/jpeg;base64,"); // the browser-made preview
    await eventually("the image loaded from its signed URL at 40x30", () =>
      img.evaluate((el: HTMLImageElement) => /\/v1\/attachments\//.test(el.src) && el.complete && el.naturalWidth === 40 && el.naturalHeight === 30),
    );
    await shot(b, "image-inline-bob");
    await img.click();
    await b.locator("[data-testid=lightbox] img").waitFor({ state: "visible" });
    await shot(b, "lightbox-bob");
    await b.keyboard.press("Escape");
    await b.locator("[data-testid=lightbox]").waitFor({ state: "detached" });
    await img.click();
    await b.locator("[data-testid=lightbox]").click();
    await b.locator("[data-testid=lightbox]").waitFor({ state: "detached" });
  });

  it("alice attaches a PDF with the attach button and bob downloads the same bytes", async () => {
    const [a, b] = [page.alice, page.bob];
    const pdf = Buffer.from(`%PDF-1.4\n% edgechat ${sfx}\n${"0123456789".repeat(300)}\n%%EOF\n`);
    await a.locator("#attach-input").setInputFiles({ name: "report.pdf", mimeType: "application/pdf", buffer: pdf });
    const link = b.locator(".msg.theirs .attachment.file", { hasText: "report.pdf" }).last().locator("a.download");
    await link.waitFor({ timeout: 10_000 });
    expect(await link.getAttribute("download")).toBe("report.pdf");
    const [download] = await Promise.all([b.waitForEvent("download"), link.click()]);
    expect(download.suggestedFilename()).toBe("report.pdf");
    const saved = await download.path();
    expect(Buffer.compare(readFileSync(saved), pdf)).toBe(0);
    await shot(b, "pdf-bob");
  });

  it("a file sent in one request shows its progress as the bytes go out, not only at the end", async () => {
    const a = page.alice;
    const size = 3 * 1024 * 1024;
    // Chromium's own network throttling (1 MiB/s up), so the upload takes a few seconds on 127.0.0.1.
    const cdp = await a.context().newCDPSession(a);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 1024 * 1024 });
    try {
      const dt = await a.evaluateHandle((n) => {
        const data = new DataTransfer();
        data.items.add(new File([new Uint8Array(n)], "three.bin", { type: "application/octet-stream" }));
        return data;
      }, size);
      const view = a.locator("[data-testid=conversation]");
      for (const type of ["dragenter", "dragover", "drop"]) await view.dispatchEvent(type, { dataTransfer: dt });
      const bar = a.locator("[data-testid=uploads] .upload", { hasText: "three.bin" }).locator("progress");
      await bar.waitFor();
      const seen = new Set<number>();
      for (let i = 0; i < 100 && (await bar.count()) > 0; i++) {
        const value = await bar.getAttribute("value", { timeout: 500 }).catch(() => null);
        if (value !== null) seen.add(Number(value));
        await a.waitForTimeout(100);
      }
      // Values between 0 and the whole file: the bar moved while the request was still going out.
      expect([...seen].filter((v) => v > 0 && v < size).length, `values seen: ${[...seen].join(", ")}`).toBeGreaterThan(1);
    } finally {
      await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
      await cdp.detach();
    }
  });

  it("a large file's upload survives a reload: the page resumes it with only the part that had no answer", async () => {
    const [a, b] = [page.alice, page.bob];
    // Part 2 cannot go through before the reload (the tab is being closed); part 1 can.
    const part2 = (u: URL) => /\/v1\/attachments\/[^/]+\/parts\/2$/.test(u.pathname);
    let blocking = true;
    await a.route(part2, (route) => (blocking ? route.abort() : route.continue()));
    let part1Answered = false;
    const onFinished = (r: { url(): string; method(): string }) => {
      if (r.method() === "PUT" && /\/parts\/1$/.test(r.url())) part1Answered = true;
    };
    a.on("requestfinished", onFinished);
    // 12 MiB made in the page (two parts of a multipart upload: 10 MiB + 2 MiB), dropped on the conversation.
    const dt = await a.evaluateHandle((tag) => {
      const bytes = new Uint8Array(12 * 1024 * 1024).fill(7);
      bytes.set(new TextEncoder().encode(tag));
      const data = new DataTransfer();
      data.items.add(new File([bytes], "big.bin", { type: "application/octet-stream" }));
      return data;
    }, `edgechat ${sfx}`);
    const view = a.locator("[data-testid=conversation]");
    await view.dispatchEvent("dragenter", { dataTransfer: dt });
    await view.dispatchEvent("dragover", { dataTransfer: dt });
    await view.dispatchEvent("drop", { dataTransfer: dt });
    await a.locator("[data-testid=uploads] .upload", { hasText: "big.bin" }).waitFor();
    await eventually("part 1 answered", async () => part1Answered);
    // Its etag is written to the outbox (IndexedDB) as it is answered, with the item and its 12 MiB file: wait for
    // that write to commit (a fixed wait was not enough on a busy machine), not for a guess of how long it takes.
    await eventually("part 1's etag is in the outbox (IndexedDB)", () =>
      a.evaluate(
        () =>
          new Promise<boolean>((resolve) => {
            const open = indexedDB.open("edgechat-outbox");
            open.onerror = () => resolve(false);
            open.onsuccess = () => {
              const db = open.result;
              const all = db.transaction("outbox", "readonly").objectStore("outbox").getAll();
              all.onerror = () => (db.close(), resolve(false));
              all.onsuccess = () => {
                db.close();
                const slots = (all.result as { attachments?: { multipart?: { etags: [number, string][] } }[] }[]).flatMap((item) => item.attachments ?? []);
                resolve(slots.some((slot) => slot.multipart?.etags.some(([n]) => n === 1) ?? false));
              };
            };
          }),
      ),
    );
    a.off("requestfinished", onFinished);

    const partsAfter: string[] = [];
    const onRequest = (r: { url(): string; method(): string }) => {
      const m = /\/parts\/(\d+)$/.exec(r.url());
      if (r.method() === "PUT" && m) partsAfter.push(m[1]!);
    };
    a.on("request", onRequest);
    await a.reload();
    blocking = false; // the old page is gone; the reloaded one may send part 2 (a first try may still meet the block and be retried)
    const file = b.locator(".msg.theirs .attachment.file", { hasText: "big.bin" });
    await file.waitFor({ timeout: 20_000 });
    a.off("request", onRequest);
    await a.unroute(part2);
    // Part 1 was never sent again: the reloaded page resumed the upload from the outbox.
    expect(partsAfter.length).toBeGreaterThan(0);
    expect(new Set(partsAfter)).toEqual(new Set(["2"]));
    await shot(b, "resumed-upload-bob");
  });

  it("a group of three sees each other's messages", async () => {
    const a = page.alice;
    await a.goto(`${base}/#/`);
    await a.locator("[data-testid=inbox] li").first().waitFor();
    await shot(a, "inbox-alice");
    await a.fill("#group-title", "trio");
    await a.fill("#group-members", `${names.bob}, ${names.carol}`);
    await a.click("[data-action=create-group]");
    await a.waitForURL(/#\/c\/g_/);
    groupHash = new URL(a.url()).hash;
    await a.locator("[data-testid=title]").getByText("trio").waitFor();
    // Bob and carol join by link (the inbox lists the group too, but a link is what a user shares).
    for (const who of ["bob", "carol"] as const) await page[who].goto(`${base}/${groupHash}`);
    for (const who of ["bob", "carol"] as const) await page[who].locator("[data-testid=title]").getByText("trio").waitFor();
    await send(a, "group hello from alice");
    await send(page.bob, "group hello from bob");
    await send(page.carol, "group hello from carol");
    const all = ["group hello from alice", "group hello from bob", "group hello from carol"];
    for (const who of ["alice", "bob", "carol"] as const) {
      await eventually(`${who} sees all three group messages once`, async () => {
        for (const text of all) if ((await count(page[who], text)) !== 1) return false;
        return true;
      });
    }
    // Senders are named on other members' messages.
    expect(await page.carol.locator(".msg.theirs .sender").allTextContents()).toEqual(expect.arrayContaining([names.alice, names.bob]));
    await shot(page.carol, "group-carol");
  });

  it("bob is promoted to admin and the add-member form appears without a reload", async () => {
    const [a, b, c] = [page.alice, page.bob, page.carol];
    await a.locator("#add-member").waitFor({ state: "visible" }); // the owner's
    for (const p of [b, c]) expect(await p.locator("#add-member").isVisible()).toBe(false);
    const session = (p: Page) => p.evaluate(() => JSON.parse(localStorage.getItem("edgechat.session") ?? "{}") as { accessToken: string; user: { id: string } });
    const [owner, bob] = await Promise.all([session(a), session(b)]);
    const res = await fetch(`${base}/v1/conversations/${groupHash.slice("#/c/".length)}/members/${bob.user.id}`, {
      method: "PATCH",
      headers: { Authorization: `Bearer ${owner.accessToken}`, "Content-Type": "application/json" },
      body: JSON.stringify({ role: "admin" }),
    });
    expect(res.ok).toBe(true);
    await eventually("bob's add-member form shows (members_changed.updated, no reload)", () => b.locator("#add-member").isVisible());
    expect(await c.locator("#add-member").isVisible()).toBe(false);
    await shot(b, "group-bob-admin");
  });
});
