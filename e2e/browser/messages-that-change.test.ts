// Messages that change (issue 12) in Chromium against the real Worker: in a group, alice (the owner, on a
// wide screen) and bob (a member, at a phone's width) mention each other with the autocomplete, edit with
// the keyboard, react with the picker and the chips, reply and talk in a thread, change things offline
// (shown at once, delivered on reconnect), and delete (bob his own, alice as owner his too). Each step
// asserts what both of them see. Screenshots: test-results/browser/changes-*.png.
import { join } from "node:path";
import type { Browser, Locator, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { HAS_CHROMIUM, SHOTS, SKIP_REASON, eventually, launchChromium } from "./browser.ts";

const PASSWORD = "correct horse battery";
const sfx = Date.now().toString(36).slice(-6);
const names = { alice: `alice_${sfx}`, bob: `bob_${sfx}` };


let browser: Browser | null = null;
const base = inject("baseUrl");
let a: Page;
let b: Page;


const shot = (p: Page, name: string) => p.screenshot({ path: join(SHOTS, `changes-${name}.png`) });
/** The message in the main list whose body contains `text` (not a reply quoting it; not in the thread pane). */
const msg = (p: Page, text: string) => p.locator("[data-testid=messages] > .msg").filter({ has: p.locator(".body", { hasText: text }) });
/** The message at `seq` in the main list, whatever it shows (an edit box, a tombstone). */
const bySeq = (p: Page, seq: string | null) => p.locator(`[data-testid=messages] > .msg[data-seq="${seq}"]`);
const bodies = (p: Page) => p.locator("[data-testid=messages] > .msg .body").allTextContents();
/** Open a message's action menu from the keyboard: focus "⋯", press Enter. Returns the menu. */
async function openMenu(m: Locator): Promise<Locator> {
  await m.locator("[data-action=message-menu]").focus();
  await m.page().keyboard.press("Enter");
  const menu = m.locator("[role=menu]");
  await menu.waitFor();
  return menu;
}
async function menuItems(m: Locator): Promise<string[]> {
  const menu = await openMenu(m);
  const items = await menu.locator("[role=menuitem]").allTextContents();
  await m.page().keyboard.press("Escape");
  await menu.waitFor({ state: "detached" });
  return items.map((s) => s.trim());
}
const chip = (m: Locator, emoji: string) => m.locator(`.reactions .chip[data-emoji="${emoji}"]`);
async function chipState(m: Locator, emoji: string): Promise<string> {
  const c = chip(m, emoji);
  if ((await c.count()) === 0) return "none";
  return `${(await c.locator(".count").textContent())?.trim()}${(await c.getAttribute("aria-pressed")) === "true" ? " me" : ""}`;
}

async function signUp(p: Page, username: string): Promise<void> {
  await p.goto(`${base}/#/login`);
  await p.fill("#username", username);
  await p.fill("#password", PASSWORD);
  await p.click("[data-action=signup]");
  await p.locator("[data-testid=me]").getByText(username).waitFor({ timeout: 10_000 });
}

if (!HAS_CHROMIUM) it.skip(`SKIPPED: ${SKIP_REASON}`, () => {});

describe.skipIf(!HAS_CHROMIUM)("messages that change, in Chromium", () => {
  beforeAll(async () => {
    browser = await launchChromium();
    // alice on a wide screen (the thread beside the conversation), bob on a phone (the thread over it).
    a = await (await browser.newContext({ viewport: { width: 1100, height: 800 } })).newPage();
    b = await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage();
    await Promise.all([signUp(a, names.alice), signUp(b, names.bob)]);
    await a.fill("#group-title", "changes");
    await a.fill("#group-members", names.bob);
    await a.click("[data-action=create-group]");
    await a.waitForURL(/#\/c\/g_/);
    await b.goto(`${base}/${new URL(a.url()).hash}`);
    for (const p of [a, b]) await p.locator("[data-testid=title]").getByText("changes").waitFor();
  });

  afterAll(async () => {
    await browser?.close();
  });

  it("bob mentions alice from the autocomplete; alice sees it highlighted; @all is offered to the owner only", async () => {
    await b.locator("#composer").pressSequentially(`hi @${names.alice.slice(0, 3)}`, { delay: 10 });
    const list = b.locator("[data-testid=mention-list]");
    await list.locator(`[role=option][data-username="${names.alice}"]`).waitFor();
    expect(await list.locator("[role=option][data-username=all]").count()).toBe(0); // bob is a member
    await shot(b, "mention-list-bob");
    await b.keyboard.press("Tab");
    await list.waitFor({ state: "detached" });
    expect(await b.inputValue("#composer")).toBe(`hi @${names.alice} `);
    await b.locator("#composer").pressSequentially("are you there?", { delay: 5 });
    await b.keyboard.press("Enter");

    const text = `hi @${names.alice} are you there?`;
    const m = msg(a, text);
    await m.waitFor();
    await eventually("alice's copy is marked as mentioning her", async () => (await m.getAttribute("data-mentions-me")) === "true");
    expect(await m.locator(".body").textContent()).toBe(text);
    expect(await m.locator(".mention.me").textContent()).toBe(`@${names.alice}`);
    expect(await msg(b, text).getAttribute("data-mentions-me")).toBeNull();

    // The owner is offered @all; Esc closes the list and keeps the text.
    await a.locator("#composer").pressSequentially("@a", { delay: 10 });
    await a.locator("[data-testid=mention-list] [role=option][data-username=all]").waitFor();
    await a.keyboard.press("Escape");
    await a.locator("[data-testid=mention-list]").waitFor({ state: "detached" });
    expect(await a.inputValue("#composer")).toBe("@a");
    await a.fill("#composer", "");
    await shot(a, "mentioned-alice");
  });

  it("alice edits her message from the keyboard; bob sees the new text marked edited; Esc cancels an edit", async () => {
    await a.fill("#composer", "helo bob");
    await a.keyboard.press("Enter");
    await eventually("alice's message stored", async () => (await msg(a, "helo bob").getAttribute("data-seq")) !== null);
    const seq = await msg(a, "helo bob").getAttribute("data-seq");
    const mine = bySeq(a, seq);
    await msg(b, "helo bob").waitFor();

    // Bob may only reply and react to alice's message; alice may edit, reply, react and delete.
    expect(await menuItems(msg(b, "helo bob"))).toEqual(["Reply", "React"]);
    expect(await menuItems(mine)).toEqual(["Edit", "Reply", "React", "Delete"]);

    const menu = await openMenu(mine);
    await eventually("focus in the menu, on Edit", async () => (await a.evaluate(() => document.activeElement?.textContent)) === "Edit");
    await a.keyboard.press("Enter");
    const box = mine.locator("textarea.edit-box");
    await box.waitFor();
    await menu.waitFor({ state: "detached" });
    expect(await box.inputValue()).toBe("helo bob");
    await box.fill("hello bob");
    await box.press("Enter");

    for (const p of [a, b]) {
      const m = msg(p, "hello bob");
      await eventually("the edit on both screens", async () => (await m.locator(".body").textContent()) === "hello bob" && (await m.locator("[data-testid=edited]").count()) === 1);
      expect(await m.locator("[data-testid=edited]").getAttribute("title")).toMatch(/^Edited /);
    }
    expect(await bodies(b)).not.toContain("helo bob");

    await openMenu(mine);
    await eventually("focus on Edit again", async () => (await a.evaluate(() => document.activeElement?.textContent)) === "Edit");
    await a.keyboard.press("Enter");
    await mine.locator("textarea.edit-box").fill("never sent");
    await a.keyboard.press("Escape");
    await mine.locator("textarea.edit-box").waitFor({ state: "detached" });
    expect(await mine.locator(".body").textContent()).toBe("hello bob");
    await shot(b, "edited-bob");
  });

  it("reactions: bob picks 👍 with the keyboard, alice adds hers from the chip, bob takes his back", async () => {
    const [ma, mb] = [msg(a, "hello bob"), msg(b, "hello bob")];
    const menu = await openMenu(mb);
    await menu.locator("[data-action=react]").click();
    const picker = mb.locator(".picker[role=menu]");
    await picker.waitFor();
    expect(await picker.locator("button").count()).toBe(6);
    // Focus starts on 👍; → moves to ❤️ and ← back.
    await eventually("focus on 👍", async () => (await b.evaluate(() => document.activeElement?.getAttribute("data-emoji"))) === "👍");
    await b.keyboard.press("ArrowRight");
    expect(await b.evaluate(() => document.activeElement?.getAttribute("data-emoji"))).toBe("❤️");
    await b.keyboard.press("ArrowLeft");
    await b.keyboard.press("Enter");
    await picker.waitFor({ state: "detached" });

    await eventually("👍 1 for both, pressed for bob only", async () => (await chipState(mb, "👍")) === "1 me" && (await chipState(ma, "👍")) === "1");
    await chip(ma, "👍").click();
    await eventually("👍 2 for both, pressed for alice too", async () => (await chipState(ma, "👍")) === "2 me" && (await chipState(mb, "👍")) === "2 me");
    await shot(a, "reactions-alice");
    await chip(mb, "👍").click();
    await eventually("👍 1 for both, pressed for alice only", async () => (await chipState(ma, "👍")) === "1 me" && (await chipState(mb, "👍")) === "1");
  });

  it("alice replies to bob's mention; bob answers in the thread pane; alice opens the thread beside the conversation", async () => {
    const parentText = "are you there?";
    await (await openMenu(msg(a, parentText))).locator("[data-action=reply]").click();
    const bar = a.locator("[data-testid=reply-bar]");
    await bar.waitFor();
    expect(await bar.textContent()).toContain(`Replying to ${names.bob}: hi @${names.alice} are you there?`);
    expect(await a.evaluate(() => document.activeElement?.id)).toBe("composer");
    await a.keyboard.type("yes, here");
    await a.keyboard.press("Enter");
    await bar.waitFor({ state: "detached" });

    for (const p of [a, b]) {
      const reply = msg(p, "yes, here");
      await reply.waitFor();
      expect(await reply.locator(".quote .quote-sender").textContent()).toBe(p === b ? "You" : names.bob);
      expect(await reply.locator(".quote .quote-text").textContent()).toBe(`hi @${names.alice} are you there?`);
      await eventually("“1 reply” on the parent", async () => (await msg(p, parentText).locator("[data-action=open-thread]").textContent()) === "1 reply");
    }

    // The quote takes bob to the parent.
    await msg(b, "yes, here").locator(".quote").click();
    await eventually("the parent flashes", async () => ((await msg(b, parentText).getAttribute("class")) ?? "").includes("flash"));

    await msg(b, parentText).locator("[data-action=open-thread]").click();
    const pane = b.locator("[data-testid=thread]");
    await pane.waitFor();
    await pane.locator("[data-testid=thread-messages] .msg", { hasText: "yes, here" }).waitFor();
    expect(await pane.locator("[data-testid=thread-parent] .body").textContent()).toBe(`hi @${names.alice} are you there?`);
    await b.locator("#thread-composer").pressSequentially(`thanks @${names.alice.slice(0, 4)}`, { delay: 10 });
    await b.keyboard.press("Enter"); // picks alice from the list
    await b.keyboard.type("!");
    await b.keyboard.press("Enter"); // sends
    await pane.locator("[data-testid=thread-messages] .msg", { hasText: "thanks" }).waitFor();
    await shot(b, "thread-bob");

    const thanks = `thanks @${names.alice} !`;
    await eventually("alice sees 2 replies and bob's thread message (mentioning her) in the list", async () =>
      (await msg(a, parentText).locator("[data-action=open-thread]").textContent()) === "2 replies" &&
      (await msg(a, thanks).getAttribute("data-mentions-me")) === "true",
    );
    await msg(a, parentText).locator("[data-action=open-thread]").click();
    const paneA = a.locator("[data-testid=thread]");
    await eventually("alice's thread pane lists both replies, beside the conversation", async () =>
      JSON.stringify(await paneA.locator("[data-testid=thread-messages] .msg .body").allTextContents()) === JSON.stringify(["yes, here", thanks]) &&
      (await a.locator("[data-testid=messages]").isVisible()),
    );
    expect(await paneA.locator("[data-testid=thread-count]").textContent()).toBe("2 replies");
    await shot(a, "thread-alice");
    await b.keyboard.press("Escape"); // closes bob's pane (the box has no list open)
    await pane.waitFor({ state: "detached" });
  });

  it("offline, bob's reaction and edit show at once on his screen and reach alice once he is back", async () => {
    const thanks = `thanks @${names.alice} !`;
    await b.context().setOffline(true);
    await b.locator("[data-testid=banner]").waitFor({ state: "visible" });
    try {
      await (await openMenu(msg(b, "hello bob"))).locator("[data-action=react]").click();
      await msg(b, "hello bob").locator('.picker [data-emoji="🎉"]').click();
      await (await openMenu(msg(b, thanks))).locator("[data-action=edit]").click();
      const box = b.locator("[data-testid=messages] textarea.edit-box");
      await box.fill(`thanks a lot @${names.alice}`);
      await box.press("Enter");
      await eventually("bob sees his 🎉 and his new text while offline", async () =>
        (await chipState(msg(b, "hello bob"), "🎉")) === "1 me" && (await msg(b, "thanks a lot").count()) === 1,
      );
      await shot(b, "offline-changes-bob");
      await new Promise((r) => setTimeout(r, 300));
      expect(await chipState(msg(a, "hello bob"), "🎉")).toBe("none");
      expect(await msg(a, "thanks a lot").count()).toBe(0);
    } finally {
      await b.context().setOffline(false);
    }
    await eventually("alice gets both once bob is back", async () =>
      (await chipState(msg(a, "hello bob"), "🎉")) === "1" && (await msg(a, "thanks a lot").locator("[data-testid=edited]").count()) === 1,
    );
    // Her open thread follows the edit too.
    await a.locator("[data-testid=thread-messages] .msg .body", { hasText: "thanks a lot" }).waitFor();
  });

  it("deletes: alice (owner) deletes bob's message, bob deletes his thread parent; tombstones and quotes follow", async () => {
    await b.fill("#composer", "oops wrong chat");
    await b.keyboard.press("Enter");
    const oopsSeq = await (async () => {
      const m = msg(a, "oops wrong chat");
      await m.waitFor();
      return m.getAttribute("data-seq");
    })();
    const menu = await openMenu(msg(a, "oops wrong chat"));
    await menu.locator("[data-action=delete]").click();
    const confirm = a.locator("[role=alertdialog]");
    await confirm.waitFor();
    await confirm.locator("[data-action=confirm-delete]").click();
    for (const p of [a, b]) {
      const m = p.locator(`[data-testid=messages] > .msg[data-seq="${oopsSeq}"]`);
      await eventually("a tombstone where “oops” was", async () => (await m.locator("[data-testid=tombstone]").textContent()) === "This message was deleted");
      expect(await m.locator("[data-action=message-menu]").count()).toBe(0);
    }
    expect(await bodies(b)).not.toContain("oops wrong chat");

    // Bob deletes the thread's parent (his own): Esc on the confirmation first keeps it.
    const parent = msg(b, "are you there?");
    const parentSeq = await parent.getAttribute("data-seq");
    await (await openMenu(parent)).locator("[data-action=delete]").click();
    await b.locator("[role=alertdialog]").waitFor();
    await b.keyboard.press("Escape");
    await b.locator("[role=alertdialog]").waitFor({ state: "detached" });
    await (await openMenu(parent)).locator("[data-action=delete]").click();
    await b.locator("[role=alertdialog] [data-action=confirm-delete]").click();
    for (const p of [a, b]) {
      const tomb = p.locator(`[data-testid=messages] > .msg[data-seq="${parentSeq}"]`);
      await eventually("the parent is a tombstone that keeps its thread link", async () =>
        (await tomb.locator("[data-testid=tombstone]").count()) === 1 && (await tomb.locator("[data-action=open-thread]").textContent()) === "2 replies",
      );
      await eventually("the reply's quote says the parent was deleted", async () => (await msg(p, "yes, here").locator(".quote .quote-text").textContent()) === "deleted message");
    }
    await eventually("alice's open thread shows the tombstone as its parent", async () => (await a.locator("[data-testid=thread-parent] [data-testid=tombstone]").count()) === 1);
    await shot(a, "deleted-alice");
    await shot(b, "deleted-bob");
  });
});
