/**
 * The web console's modals, Home tab and DM pane (issue 20), in a real headless Chromium. Here the
 * console talks to a small recording endpoint that plays the gateway: it checks every request's
 * Slack signature, keeps the payloads and answers as the test says, and the test makes the
 * stand-in receive the Web API calls the gateway makes with its bot token (views.open,
 * views.publish, chat.postMessage to a user), form-encoded as Slack's own client sends them.
 * The helpers (console-helpers.ts) serve end-to-end tests against the real gateway too.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import { SlackConsole, SlackStandIn, slackSignature, type ConsolePerson } from "@iaas/testkit";
import { botCall, launchBrowser, modalOf } from "./console-helpers.js";

const SECRET = "console-views-test-secret";
const HOSTILE = "<img src=x onerror=alert(1)>";
const people: ConsolePerson[] = [
  { id: "U0001", name: "admin", label: "Local admin (U0001)" },
  { id: "U0002", name: "pat", label: "Pat, a plain user (U0002)" },
  { id: "U0003", name: "sam", label: "Sam, Pat's teammate (U0003)" },
];

interface Received {
  /** The form payload's or JSON body's parsed content; a slash command's form fields. */
  payload: Record<string, any>;
  /** The v0 signature matched with the secret and the request's own timestamp. */
  signed: boolean;
  contentType: string;
}

/** Plays the gateway: checks signatures, records, answers with `answer` (default an empty 200). */
class Recorder {
  readonly got: Received[] = [];
  answer: (p: Record<string, any>) => { status?: number; body?: unknown } = () => ({});
  private server: Server;
  url = "";
  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const raw = Buffer.concat(chunks).toString("utf8");
        const ts = Number(req.headers["x-slack-request-timestamp"]);
        const signed = req.headers["x-slack-signature"] === slackSignature(SECRET, ts, raw) && Math.abs(Date.now() / 1000 - ts) < 300;
        const contentType = String(req.headers["content-type"] ?? "");
        const form = contentType.startsWith("application/x-www-form-urlencoded") ? new URLSearchParams(raw) : undefined;
        const payload = form ? (form.has("payload") ? JSON.parse(form.get("payload")!) : Object.fromEntries(form)) : JSON.parse(raw);
        this.got.push({ payload, signed, contentType });
        const a = this.answer(payload);
        res.writeHead(a.status ?? 200, { "content-type": "application/json" });
        res.end(a.body === undefined ? "" : JSON.stringify(a.body));
      });
    });
  }
  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/slack/events`;
  }
  of(type: string): Received[] {
    return this.got.filter((g) => (g.payload.type ?? (g.payload.command ? "slash_command" : "")) === type);
  }
  async next(type: string, after: number): Promise<Received> {
    await expect.poll(() => this.of(type).length, { timeout: 15_000 }).toBeGreaterThan(after);
    return this.of(type)[after]!;
  }
  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

const plain = (text: string) => ({ type: "plain_text", text });
const createModal = {
  type: "modal",
  callback_id: "iaas.create",
  private_metadata: JSON.stringify({ channel: "C0001" }),
  notify_on_close: true,
  title: plain("Create a VM"),
  submit: plain("Create"),
  close: plain("Cancel"),
  blocks: [
    { type: "section", text: { type: "mrkdwn", text: "A VM *of your own*, for `8h`." } },
    { type: "input", block_id: "name", label: plain("Name"), element: { type: "plain_text_input", action_id: "value", placeholder: plain("demo-01") } },
    { type: "input", block_id: "size", label: plain("Size"), element: { type: "static_select", action_id: "value", options: [{ text: plain("small"), value: "small" }, { text: plain("large"), value: "large" }] } },
    { type: "input", block_id: "template", label: plain("Template"), element: { type: "external_select", action_id: "tmpl", min_query_length: 1 } },
    { type: "input", block_id: "owner", optional: true, label: plain("Owner"), element: { type: "users_select", action_id: "who" } },
  ],
};

describe("the web console's modals, Home tab and DMs in a real browser", () => {
  let slack: SlackStandIn;
  let gw: Recorder;
  let web: SlackConsole;
  let page: Page;
  let closeBrowser: () => Promise<void>;
  const alerts: string[] = [];

  beforeAll(async () => {
    slack = await SlackStandIn.start();
    gw = new Recorder();
    await gw.start();
    web = await SlackConsole.start({ slack, gatewayUrl: gw.url, secret: SECRET, people });
    const b = await launchBrowser();
    page = b.page;
    closeBrowser = b.close;
    page.on("dialog", (d) => {
      alerts.push(d.message());
      void d.dismiss();
    });
    await page.goto(web.url);
  }, 60_000);

  afterAll(async () => {
    await closeBrowser?.();
    await web?.close();
    await gw?.close();
    await slack?.close();
  });

  const actAs = (id: string) => page.getByLabel("Acting as").selectOption(id);

  /** Types `/iaas <text>` in the channel and answers the trigger_id the app got. */
  async function slash(text: string): Promise<string> {
    const before = gw.of("slash_command").length;
    await page.getByRole("textbox", { name: "Message #iaas" }).fill(`/iaas ${text}`);
    await page.getByRole("textbox", { name: "Message #iaas" }).press("Enter");
    const got = await gw.next("slash_command", before);
    expect(got.signed).toBe(true);
    return got.payload.trigger_id as string;
  }

  it("opens views.open as a dialog with its inputs; external options come by a signed block_suggestion; errors show beside the field; an empty answer closes it", async () => {
    await actAs("U0002");
    const trigger = await slash("create");
    const opened = await botCall(slack, "views.open", { trigger_id: trigger, view: createModal });
    expect(opened).toMatchObject({ ok: true, view: { type: "modal", callback_id: "iaas.create", root_view_id: opened.view.id, previous_view_id: null } });
    expect(opened.view.id).toMatch(/^V/);
    expect(typeof opened.view.hash).toBe("string");
    // Slack takes a trigger once.
    expect(await botCall(slack, "views.open", { trigger_id: trigger, view: createModal })).toMatchObject({ ok: false, error: "exchanged_trigger_id" });

    const dialog = modalOf(page, "Create a VM");
    await dialog.waitFor();
    expect(await dialog.innerText()).toContain("A VM of your own");
    await dialog.getByRole("textbox", { name: "Name" }).fill("demo-07");
    await dialog.getByRole("combobox", { name: "Size" }).selectOption("large");
    await dialog.getByRole("combobox", { name: "Owner (optional)" }).selectOption("U0003");

    gw.answer = (p) => (p.type === "block_suggestion" ? { body: { options: [{ text: plain("Ubuntu 22.04"), value: "tmpl-ubuntu-22.04" }, { text: plain(HOSTILE), value: "evil" }] } } : {});
    await dialog.getByRole("searchbox", { name: "Search Template" }).fill("ub");
    const suggestion = (await gw.next("block_suggestion", 0)).payload;
    expect(gw.of("block_suggestion").every((g) => g.signed)).toBe(true);
    expect(suggestion).toMatchObject({ type: "block_suggestion", action_id: "tmpl", block_id: "template", user: { id: "U0002" }, container: { type: "view", view_id: opened.view.id }, view: { id: opened.view.id, callback_id: "iaas.create" } });
    await dialog.getByRole("option", { name: "Ubuntu 22.04" }).waitFor({ state: "attached" });
    expect(await dialog.getByRole("option", { name: HOSTILE }).count()).toBe(1);
    await dialog.getByRole("combobox", { name: "Template", exact: true }).selectOption("tmpl-ubuntu-22.04");

    gw.answer = (p) => (p.type === "view_submission" ? { body: { response_action: "errors", errors: { name: "demo-07 is taken: pick another name" } } } : {});
    await dialog.getByRole("button", { name: "Create" }).click();
    const first = await gw.next("view_submission", 0);
    expect(first.signed).toBe(true);
    expect(first.payload).toMatchObject({
      type: "view_submission",
      team: { id: "T0001" },
      user: { id: "U0002", username: "pat" },
      response_urls: [],
      view: {
        id: opened.view.id,
        callback_id: "iaas.create",
        private_metadata: createModal.private_metadata,
        hash: opened.view.hash,
        state: {
          values: {
            name: { value: { type: "plain_text_input", value: "demo-07" } },
            size: { value: { type: "static_select", selected_option: { value: "large", text: { text: "large" } } } },
            template: { tmpl: { type: "external_select", selected_option: { value: "tmpl-ubuntu-22.04" } } },
            owner: { who: { type: "users_select", selected_user: "U0003" } },
          },
        },
      },
    });
    expect(first.payload.trigger_id).toMatch(/^\d+\.1\./);
    await dialog.getByText("demo-07 is taken: pick another name").waitFor();
    expect(await dialog.getByRole("textbox", { name: "Name" }).getAttribute("aria-invalid")).toBe("true");

    gw.answer = () => ({});
    await dialog.getByRole("textbox", { name: "Name" }).fill("demo-08");
    await dialog.getByRole("button", { name: "Create" }).click();
    expect((await gw.next("view_submission", 1)).payload.view.state.values.name.value.value).toBe("demo-08");
    await dialog.waitFor({ state: "hidden" });
    expect(slack.modalStack("U0002")).toEqual([]);
    // Submitted, not closed: no view_closed.
    expect(gw.of("view_closed")).toEqual([]);
    expect(alerts).toEqual([]);
  });

  it("checks required fields before sending, as Slack does; close sends view_closed (notify_on_close) and closes", async () => {
    const trigger = await slash("create");
    const opened = await botCall(slack, "views.open", { trigger_id: trigger, view: createModal });
    const dialog = modalOf(page, "Create a VM");
    await dialog.waitFor();
    const sent = gw.of("view_submission").length;
    await dialog.getByRole("button", { name: "Create" }).click();
    expect(await dialog.getByText("Please complete this required field.").count()).toBe(3);
    expect(gw.of("view_submission").length).toBe(sent);
    await dialog.getByRole("button", { name: "Cancel" }).click();
    const closed = await gw.next("view_closed", 0);
    expect(closed.signed).toBe(true);
    expect(closed.payload).toMatchObject({ type: "view_closed", user: { id: "U0002" }, is_cleared: false, view: { id: opened.view.id, callback_id: "iaas.create" } });
    await dialog.waitFor({ state: "hidden" });
  });

  it("follows views.update and a submission's update, push and clear answers; a stale hash is refused", async () => {
    const trigger = await slash("create");
    const opened = await botCall(slack, "views.open", { trigger_id: trigger, view: { type: "modal", callback_id: "step", title: plain("Step one"), submit: plain("Next"), blocks: [{ type: "input", block_id: "a", label: plain("First"), element: { type: "plain_text_input", action_id: "v" } }] } });
    await modalOf(page, "Step one").waitFor();
    await modalOf(page, "Step one").getByRole("textbox", { name: "First" }).fill("kept");
    const updated = await botCall(slack, "views.update", { view_id: opened.view.id, hash: opened.view.hash, view: { type: "modal", callback_id: "step", title: plain("Step one, checked"), submit: plain("Next"), blocks: [{ type: "input", block_id: "a", label: plain("First"), element: { type: "plain_text_input", action_id: "v" } }] } });
    expect(updated).toMatchObject({ ok: true, view: { id: opened.view.id } });
    expect(updated.view.hash).not.toBe(opened.view.hash);
    expect(await botCall(slack, "views.update", { view_id: opened.view.id, hash: opened.view.hash, view: createModal })).toMatchObject({ ok: false, error: "hash_conflict" });
    const one = modalOf(page, "Step one, checked");
    await one.waitFor();
    // The text typed stays: same block and action ids.
    expect(await one.getByRole("textbox", { name: "First" }).inputValue()).toBe("kept");

    gw.answer = (p) => (p.type === "view_submission" ? { body: { response_action: "push", view: { type: "modal", callback_id: "step2", title: plain("Step two"), submit: plain("Done"), blocks: [{ type: "section", text: { type: "mrkdwn", text: "Almost there" } }] } } } : {});
    await one.getByRole("button", { name: "Next" }).click();
    await modalOf(page, "Step two").waitFor();
    expect(slack.modalStack("U0002").map((v) => v.view.title)).toEqual([plain("Step one, checked"), plain("Step two")].map((t) => expect.objectContaining(t)));
    expect(slack.modalStack("U0002")[1]!.view).toMatchObject({ root_view_id: opened.view.id, previous_view_id: opened.view.id });

    gw.answer = (p) => (p.type === "view_submission" ? { body: { response_action: "clear" } } : {});
    await modalOf(page, "Step two").getByRole("button", { name: "Done" }).click();
    await modalOf(page, "Step two").waitFor({ state: "hidden" });
    expect(slack.modalStack("U0002")).toEqual([]);
    gw.answer = () => ({});
  });

  it("renders what comes from outside as text: markup in a title, a javascript: link", async () => {
    const trigger = await slash("create");
    await botCall(slack, "views.open", { trigger_id: trigger, view: { type: "modal", title: plain("<img src=x onerror=1>"), close: plain("Close"), blocks: [{ type: "section", text: { type: "mrkdwn", text: `<javascript:alert(1)|click me> ${HOSTILE.replace(/</g, "&lt;").replace(/>/g, "&gt;")}` } }] } });
    const dialog = modalOf(page, "<img src=x onerror=1>");
    await dialog.waitFor();
    // The app escapes its mrkdwn (Slack reads a bare `<` as a link); either way nothing becomes markup or a live link.
    expect(await dialog.innerText()).toContain(HOSTILE);
    expect(await dialog.innerText()).toContain("click me");
    expect(await dialog.locator("img, a").count()).toBe(0);
    await dialog.getByRole("button", { name: "Close" }).click();
    await dialog.waitFor({ state: "hidden" });
    expect(alerts).toEqual([]);
  });

  it("fills the Home tab from views.publish for the acting user, sends app_home_opened when it is opened, and Home buttons send block_actions from the view", async () => {
    const published = await botCall(slack, "views.publish", { user_id: "U0002", view: { type: "home", blocks: [{ type: "header", text: plain("Your VMs") }, { type: "section", text: { type: "mrkdwn", text: "*pat-01* :large_green_circle: on" }, accessory: { type: "button", action_id: "iaas.run", value: "power off pat-01", text: plain("Power off") } }] } });
    expect(published).toMatchObject({ ok: true, view: { type: "home" } });
    const tab = page.getByRole("tab", { name: "Home" });
    await tab.click();
    expect(await tab.getAttribute("aria-selected")).toBe("true");
    const opened = await gw.next("event_callback", 0);
    expect(opened.signed).toBe(true);
    expect(opened.contentType).toContain("application/json");
    expect(opened.payload).toMatchObject({ type: "event_callback", team_id: "T0001", api_app_id: "A0001", event: { type: "app_home_opened", user: "U0002", tab: "home", channel: slack.dmChannel("U0002"), view: { id: published.view.id } } });
    const home = page.getByRole("tabpanel", { name: "Home" });
    await home.getByText("Your VMs").waitFor();
    await home.getByRole("button", { name: "Power off" }).click();
    const click = await gw.next("block_actions", 0);
    expect(click.signed).toBe(true);
    expect(click.payload).toMatchObject({ type: "block_actions", user: { id: "U0002" }, container: { type: "view", view_id: published.view.id }, view: { type: "home", id: published.view.id }, actions: [{ action_id: "iaas.run", value: "power off pat-01" }] });
    expect(click.payload.response_url).toBeUndefined();

    // Sam opens his own Home: nothing published for him, and Pat's is not shown.
    await actAs("U0003");
    expect((await gw.next("event_callback", 1)).payload.event.user).toBe("U0003");
    await home.getByText("has not published a Home for sam").waitFor();
    expect(await home.getByText("Your VMs").count()).toBe(0);
    await actAs("U0002");
    await home.getByText("Your VMs").waitFor();
    await page.getByRole("tab", { name: "#iaas" }).click();
  });

  it("shows chat.postMessage to a user in that user's DM pane, not in the channel; its buttons send block_actions from the DM with a response_url", async () => {
    const posted = await botCall(slack, "chat.postMessage", { channel: "U0002", text: "approve?", blocks: [{ type: "section", text: { type: "mrkdwn", text: "Pat: your lease on *pat-01* ends soon" } }, { type: "actions", block_id: "lease", elements: [{ type: "button", action_id: "iaas.run", value: "lease extend pat-01 8h", text: plain("Extend 8h") }] }] });
    expect(posted).toMatchObject({ ok: true, channel: slack.dmChannel("U0002") });
    await page.getByRole("tab", { name: "Messages" }).click();
    expect((await gw.next("event_callback", 3)).payload.event).toMatchObject({ type: "app_home_opened", tab: "messages", user: "U0002" });
    const dm = page.getByRole("tabpanel", { name: "Messages" });
    const msg = dm.locator("li.msg").filter({ hasText: "your lease on pat-01" });
    await msg.waitFor();
    expect(await page.locator("#messages li.msg").filter({ hasText: "your lease on pat-01" }).count()).toBe(0);
    const before = gw.of("block_actions").length;
    await msg.getByRole("button", { name: "Extend 8h" }).click();
    const click = await gw.next("block_actions", before);
    expect(click.signed).toBe(true);
    expect(click.payload).toMatchObject({ container: { type: "message", channel_id: posted.channel, message_ts: posted.ts }, channel: { id: posted.channel }, user: { id: "U0002" }, actions: [{ action_id: "iaas.run", value: "lease extend pat-01 8h" }] });
    expect(String(click.payload.response_url).startsWith(`${slack.origin}/response/`)).toBe(true);
    await fetch(click.payload.response_url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ replace_original: true, text: "Lease extended by 8h" }) });
    await dm.getByText("Lease extended by 8h").waitFor();
    // Sam does not see Pat's DMs.
    await actAs("U0003");
    expect(await dm.locator("li.msg:visible").count()).toBe(0);
    await actAs("U0002");
    await page.getByRole("tab", { name: "#iaas" }).click();
  });
});
