/**
 * The local web console (issue 20), in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core) against the real system: the page sends signed slash commands and button
 * clicks to the gateway as Slack does, and shows what the app answers with its blocks rendered.
 * Acts as the admin: the simulator's demo VMs have no owner, and unowned VMs are admin-only.
 * Takes a screenshot; with CONSOLE_SCREENSHOT=1 it is saved as docs/console.png for the README
 * (`CONSOLE_SCREENSHOT=1 npx vitest run test/e2e/console.test.ts`), else in a temporary folder, so
 * a test run leaves the tree as it was.
 */
import { request } from "node:http";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type BrowserContext, type Locator, type Page } from "playwright-core";
import { SlackConsole, type ConsolePerson } from "@iaas/testkit";
import { SIGNING_SECRET, startSystem, type System } from "./harness.js";
import { inventory, rawClone } from "./helpers.js";
import { botCall, modalOf } from "./console-helpers.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const CHROMIUM = "/usr/bin/chromium";
const ADMIN = "UADMIN1";
const HOSTILE = "<img src=x onerror=alert(1)>";
const people: ConsolePerson[] = [
  { id: ADMIN, name: "admin", label: "Local admin (UADMIN1)" },
  { id: "U0002", name: "pat", label: "Pat, a plain user" },
];

describe("the web console in a real browser", () => {
  let sys: System;
  let web: SlackConsole;
  let browser: BrowserContext;
  let page: Page;
  let profile: string;
  const dialogs: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`no ${CHROMIUM}: scripts/setup.sh installs Debian's chromium`);
    sys = await startSystem({ admins: ADMIN });
    await rawClone(sys, HOSTILE);
    web = await SlackConsole.start({ slack: sys.slack, gatewayUrl: sys.gatewayUrl, secret: SIGNING_SECRET, people });
    profile = mkdtempSync(join(tmpdir(), "iaas-chromium-"));
    // A fresh profile each run (playwright passes it as --user-data-dir).
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      viewport: { width: 1100, height: 900 },
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    // An alert() would be the hostile VM name run as markup.
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(web.url);
    await page.getByLabel("Acting as").selectOption(ADMIN);
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await web?.close();
    await sys?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  const box = () => page.getByRole("textbox", { name: "Message #iaas" });
  /** How many messages the page showed before the latest command or post: `shown` looks only after them. */
  let mark = 0;
  const markNow = async () => {
    mark = await page.locator("li.msg").count();
  };
  /** Types a command and Enter, as a person does. */
  async function send(text: string): Promise<void> {
    await markNow();
    await box().fill(text);
    await box().press("Enter");
  }
  /** The newest message (of `kind`) since the mark that shows `text`; waits for it. */
  async function shown(text: string | RegExp, kind = "li.msg", from = mark): Promise<Locator> {
    const m = page.locator(`${kind}:nth-child(n+${from + 1})`).filter({ hasText: text }).last();
    await m.waitFor({ timeout: 30_000 });
    return m;
  }

  it("sends /iaas list all as a signed slash command and shows the demo VMs", async () => {
    // `list` alone is the caller's own and team VMs; the demo VMs have no owner.
    await send("/iaas list all");
    const answer = await shown("DC0_H0_VM0", "li.msg.ack");
    const text = await answer.innerText();
    for (const vm of ["DC0_H0_VM1", "DC0_C0_RP0_VM0"]) expect(text).toContain(vm);
    expect(text).toContain("Only visible to you");
    expect(await page.locator("li.msg.command").last().innerText()).toContain("/iaas list all");
    // The gateway got it as Slack sends it: signed (it answered), from the acting user, with a response_url on the stand-in.
    expect(await page.locator("li.msg.command").last().innerText()).toContain("admin");
  });

  it("renders /iaas info from its blocks: the host and the datastore as fields", async () => {
    await send("/iaas info DC0_H0_VM0");
    const answer = await shown(/Host/, "li.msg.ack");
    const fields = await answer.locator(".field").allInnerTexts();
    expect(fields.find((f) => f.startsWith("Host"))).toContain("DC0_H0");
    expect(fields.find((f) => /^Datastore/.test(f))).toContain("LocalDS_0");
    // Field labels are bold (mrkdwn `*Host*`), not asterisks.
    expect(await answer.locator(".field strong").count()).toBeGreaterThan(0);
    expect(await answer.innerText()).not.toContain("*Host*");
  });

  it("shows a VM whose name is HTML as text, never as markup", async () => {
    await send("/iaas list all");
    const answer = await shown(HOSTILE, "li.msg.ack");
    expect(await answer.innerText()).toContain(HOSTILE);
    expect(await page.locator("li.msg img").count()).toBe(0);
    expect(dialogs).toEqual([]);
  });

  it("shows a mrkdwn link to javascript: as its text, and Slack's escapes decoded", async () => {
    // A message as the app could post it, straight to the stand-in's Web API.
    await markNow();
    const res = await fetch(`${sys.slack.apiUrl}chat.postMessage`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer xoxb-test" },
      body: JSON.stringify({ channel: "C0001", text: "<javascript:alert(1)|run me> and <https://example.com/|a real link> for &lt;vm&gt; &amp; <@U0002>" }),
    });
    expect(res.status).toBe(200);
    const m = await shown("run me");
    expect(await m.locator("a").count()).toBe(1);
    expect(await m.locator("a").getAttribute("href")).toBe("https://example.com/");
    const text = await m.innerText();
    expect(text).toContain("for <vm> & @pat");
    expect(text).not.toContain("&lt;");
  });

  it("shows power off and power on with their results (the simulator agrees)", async () => {
    const power = async () => (await inventory(sys)).get("DC0_H0_VM0")?.powerState;
    expect(await power()).toBe("poweredOn");
    await send("/iaas power off DC0_H0_VM0");
    await shown(/DC0_H0_VM0 is powered off/);
    expect(await power()).toBe("poweredOff");
    await send("/iaas power on DC0_H0_VM0");
    await shown(/DC0_H0_VM0 is powered on/);
    expect(await power()).toBe("poweredOn");
  });

  it("acts as the picked user: a plain user is refused on an unowned VM, and the VM stays on", async () => {
    await page.getByLabel("Acting as").selectOption("U0002");
    try {
      await send("/iaas power off DC0_H0_VM1");
      const refusal = await shown(/DC0_H0_VM1/, "li.msg.ack");
      expect(await refusal.innerText()).toContain("Only visible to you");
      expect(await refusal.innerText()).not.toContain("Powering off");
      expect(new URLSearchParams(web.sent.at(-1)!.body).get("user_id")).toBe("U0002");
      expect(await page.locator("li.msg.command").last().innerText()).toContain("pat");
      expect((await inventory(sys)).get("DC0_H0_VM1")?.powerState).toBe("poweredOn");
    } finally {
      await page.getByLabel("Acting as").selectOption(ADMIN);
    }
  });

  it("asks Confirm / Cancel for a delete, and Confirm deletes the VM (the simulator agrees)", async () => {
    expect((await inventory(sys)).has("DC0_C0_RP0_VM1")).toBe(true);
    await send("/iaas delete DC0_C0_RP0_VM1");
    const ask = await shown("DC0_C0_RP0_VM1", "li.msg.ack");
    await ask.getByRole("button", { name: "Cancel" }).waitFor();
    await ask.getByRole("button", { name: "Confirm" }).click();
    await shown(/:white_check_mark:|✅/);
    await expect.poll(async () => (await inventory(sys)).has("DC0_C0_RP0_VM1"), { timeout: 30_000 }).toBe(false);
    await send("/iaas info DC0_H0_VM0");
    await shown(/Host/, "li.msg.ack");
    const shot = process.env.CONSOLE_SCREENSHOT ? join(root, "docs", "console.png") : join(mkdtempSync(join(tmpdir(), "iaas-console-shot-")), "console.png");
    await page.screenshot({ path: shot });
    expect(existsSync(shot)).toBe(true);
  });

  it("sent them as Slack does: a signed form body with trigger_id and a response_url on the stand-in", () => {
    const first = new URLSearchParams(web.sent[0]!.body);
    expect(web.sent[0]!.status).toBe(200);
    expect(Object.fromEntries(first)).toMatchObject({ command: "/iaas", text: "list all", user_id: ADMIN, user_name: "admin", channel_id: "C0001", team_id: "T0001" });
    expect(first.get("trigger_id")).toMatch(/^\d+\.1\.[0-9a-f-]{36}$/);
    expect(first.get("response_url")!.startsWith(`${sys.slack.origin}/response/`)).toBe(true);
    const click = web.sent.map((s) => new URLSearchParams(s.body).get("payload")).find(Boolean);
    const payload = JSON.parse(click!) as Record<string, any>;
    expect(payload).toMatchObject({ type: "block_actions", user: { id: ADMIN }, container: { type: "message", channel_id: "C0001", is_ephemeral: true }, actions: [{ type: "button", action_id: "iaas.confirm" }] });
    expect(String(payload.response_url).startsWith(`${sys.slack.origin}/response/`)).toBe(true);
  });

  it("shows a button's confirm object as a dialog, and sends the click only when confirmed", async () => {
    const button = { type: "button", action_id: "demo.go", value: "v1", text: { type: "plain_text", text: "Go" }, confirm: { title: { type: "plain_text", text: "Really go?" }, text: { type: "mrkdwn", text: "It *cannot* be undone." }, confirm: { type: "plain_text", text: "Yes, go" }, deny: { type: "plain_text", text: "Stay" } } };
    await markNow();
    await fetch(`${sys.slack.apiUrl}chat.postMessage`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ channel: "C0001", text: "a confirm", blocks: [{ type: "section", text: { type: "mrkdwn", text: "A button with a confirm" } }, { type: "actions", block_id: "b1", elements: [button] }] }) });
    const m = await shown("A button with a confirm");
    const before = web.sent.length;
    await m.getByRole("button", { name: "Go" }).click();
    const dialog = page.getByRole("dialog", { name: "Really go?" });
    await dialog.waitFor();
    expect(await dialog.innerText()).toContain("It cannot be undone.");
    await dialog.getByRole("button", { name: "Stay" }).click();
    await dialog.waitFor({ state: "hidden" });
    expect(web.sent.length).toBe(before);
    await m.getByRole("button", { name: "Go" }).click();
    await dialog.getByRole("button", { name: "Yes, go" }).click();
    await expect.poll(() => web.sent.length).toBe(before + 1);
    const payload = JSON.parse(new URLSearchParams(web.sent.at(-1)!.body).get("payload")!) as Record<string, any>;
    // A message in the channel: Slack sends it along.
    expect(payload).toMatchObject({ container: { is_ephemeral: false }, message: { text: "a confirm" }, actions: [{ action_id: "demo.go", block_id: "b1", value: "v1" }] });
  });

  it("applies response_url posts (replace_original, delete_original) and chat.update, and marks ephemerals by who sees them", async () => {
    const api = (method: string, body: unknown) => fetch(`${sys.slack.apiUrl}${method}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }).then((r) => r.json() as Promise<Record<string, unknown>>);
    // Replacements and deletions move messages: this test looks at the whole page.
    mark = 0;
    const posted = await api("chat.postMessage", { channel: "C0001", text: "first version" });
    await shown("first version");
    await api("chat.update", { channel: "C0001", ts: posted.ts, text: "second version" });
    const updated = await shown("second version");
    expect(await updated.innerText()).toContain("(edited)");
    expect(await page.locator("li.msg").filter({ hasText: "first version" }).count()).toBe(0);

    await api("chat.postEphemeral", { channel: "C0001", user: "U0002", text: "just for pat" });
    expect(await (await shown("just for pat")).innerText()).toContain("Only visible to pat");

    // The click on "Yes, go" above: its response_url acts on that message.
    const payload = JSON.parse(new URLSearchParams(web.sent.at(-1)!.body).get("payload")!) as { response_url: string };
    const respond = (body: unknown) => fetch(payload.response_url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    await respond({ replace_original: true, text: "replaced by the app" });
    await shown("replaced by the app");
    expect(await page.locator("li.msg").filter({ hasText: "A button with a confirm" }).count()).toBe(0);
    await respond({ replace_original: false, text: "a follow-up" });
    await shown("a follow-up");
    await respond({ delete_original: true });
    await page.locator("li.msg").filter({ hasText: "replaced by the app" }).waitFor({ state: "detached" });
    expect(await page.locator("li.msg").filter({ hasText: "a follow-up" }).count()).toBe(1);
  });

  it("the gateway takes the console's modal and Home payloads as Slack's (signed, acked with 200): a submission with no taker is answered in the dialog", async () => {
    // As the gateway would call it with the trigger of a slash command the page sent.
    await send("/iaas help");
    await shown(/commands you can run/, "li.msg.ack");
    const trigger = new URLSearchParams(web.sent.at(-1)!.body).get("trigger_id")!;
    const plain = (text: string) => ({ type: "plain_text", text });
    const opened = await botCall(sys.slack, "views.open", {
      trigger_id: trigger,
      view: { type: "modal", callback_id: "console.probe", title: plain("Probe"), submit: plain("Send"), blocks: [{ type: "input", block_id: "t", optional: true, label: plain("Template"), element: { type: "external_select", action_id: "probe.tmpl", min_query_length: 0 } }, { type: "input", block_id: "n", label: plain("Note"), element: { type: "plain_text_input", action_id: "v" } }] },
    });
    expect(opened.ok).toBe(true);
    const dialog = modalOf(page, "Probe");
    await dialog.waitFor();
    // min_query_length 0: the options are asked for at once; nobody in the gateway takes probe.tmpl, so none.
    await expect.poll(() => web.sent.some((s) => s.status === 200 && new URLSearchParams(s.body).get("payload")?.includes('"block_suggestion"'))).toBe(true);
    await dialog.getByRole("combobox", { name: "Template (optional)" }).getByRole("option", { name: "No options found" }).waitFor({ state: "attached" });
    // A required field left empty is stopped in the page, as Slack does.
    await dialog.getByRole("button", { name: "Send" }).click();
    await dialog.getByText("Please complete this required field.").waitFor();
    await dialog.getByRole("textbox", { name: "Note" }).fill("hello");
    await dialog.getByRole("button", { name: "Send" }).click();
    // No feature took console.probe: the gateway answers in the modal instead of closing it silently.
    const answered = modalOf(page, "IaaS");
    await answered.getByText("This form is not one the IaaS app opened. Nothing was done.").waitFor();
    const submitted = web.sent.at(-1)!;
    expect(submitted.status).toBe(200);
    expect(JSON.parse(new URLSearchParams(submitted.body).get("payload")!)).toMatchObject({ type: "view_submission", view: { id: opened.view.id, callback_id: "console.probe", state: { values: { n: { v: { type: "plain_text_input", value: "hello" } } } } } });
    await answered.getByRole("button", { name: "Close" }).click();
    await answered.waitFor({ state: "hidden" });
    const before = web.sent.length;
    await page.getByRole("tab", { name: "Home" }).click();
    await expect.poll(() => web.sent.length).toBe(before + 1);
    const event = web.sent.at(-1)!;
    expect(JSON.parse(event.body)).toMatchObject({ type: "event_callback", event: { type: "app_home_opened", user: ADMIN, tab: "home" } });
    expect(event.status).toBe(200);
    await page.getByRole("tab", { name: "#iaas" }).click();
  });

  it("refuses requests that are not addressed to its loopback host, and posts that are not JSON", async () => {
    const port = new URL(web.url).port;
    const misdirected = await new Promise<number>((resolve, reject) => {
      request(web.url, { headers: { host: `evil.example:${port}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on("error", reject)
        .end();
    });
    expect(misdirected).toBe(421);
    const form = await fetch(new URL("/command", web.url), { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "text=/iaas+list" });
    expect(form.status).toBe(415);
  });
});
