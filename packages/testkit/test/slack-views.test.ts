import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SlackStandIn } from "@iaas/testkit";

const plain = (text: string) => ({ type: "plain_text", text });
const modal = (title: string, extra: Record<string, unknown> = {}) => ({ type: "modal", title: plain(title), blocks: [{ type: "section", text: { type: "mrkdwn", text: "hi" } }], ...extra });

/** The stand-in's views and DMs, as the Web API answers them (https://api.slack.com/methods/views.open and the rest). */
describe("the Slack stand-in's views and DMs", () => {
  let slack: SlackStandIn;
  beforeAll(async () => {
    slack = await SlackStandIn.start();
  });
  afterAll(async () => {
    await slack?.close();
  });
  /** Form-encoded, objects as JSON strings, as Slack's client sends them. */
  const call = async (method: string, args: Record<string, unknown>) => {
    const body = new URLSearchParams(Object.entries(args).map(([k, v]): [string, string] => [k, typeof v === "string" ? v : JSON.stringify(v)]));
    return (await (await fetch(`${slack.apiUrl}${method}`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body })).json()) as Record<string, any>;
  };

  it("refuses a modal Slack would refuse: no trigger, not a modal, a title over 24 characters, inputs without a submit", async () => {
    expect(await call("views.open", { view: modal("x") })).toMatchObject({ ok: false, error: "invalid_arguments" });
    const t = () => slack.trigger("U0002");
    expect(await call("views.open", { trigger_id: t(), view: { ...modal("x"), type: "home" } })).toMatchObject({ ok: false, error: "invalid_arguments" });
    expect(await call("views.open", { trigger_id: t(), view: modal("a title that is far too long") })).toMatchObject({ ok: false, error: "invalid_arguments" });
    const input = { type: "input", label: plain("Name"), element: { type: "plain_text_input" } };
    const r = await call("views.open", { trigger_id: t(), view: { ...modal("x"), blocks: [input] } });
    expect(r).toMatchObject({ ok: false, error: "invalid_arguments", response_metadata: { messages: ["[ERROR] missing required field: submit"] } });
  });

  it("opens a modal for the trigger's user with ids filled in, once per trigger; pushes stack up to 3; closing one shows the one below", async () => {
    const t = slack.trigger("U0002");
    const input = { type: "input", label: plain("Name"), element: { type: "plain_text_input" } };
    const root = await call("views.open", { trigger_id: t, view: modal("Root", { submit: plain("Go"), blocks: [input] }) });
    expect(root).toMatchObject({ ok: true, view: { type: "modal", root_view_id: root.view.id, previous_view_id: null, state: { values: {} }, app_id: "A0001" } });
    expect(root.view.blocks[0].block_id).toMatch(/\w+/);
    expect(root.view.blocks[0].element.action_id).toMatch(/\w+/);
    expect(await call("views.open", { trigger_id: t, view: modal("Again") })).toMatchObject({ ok: false, error: "exchanged_trigger_id" });
    expect(slack.modalStack("U0002").map((v) => v.id)).toEqual([root.view.id]);
    const two = await call("views.push", { trigger_id: slack.trigger("U0002", root.view.id), view: modal("Two") });
    expect(two.view).toMatchObject({ root_view_id: root.view.id, previous_view_id: root.view.id });
    const three = await call("views.push", { trigger_id: slack.trigger("U0002", two.view.id), view: modal("Three") });
    expect(three.ok).toBe(true);
    expect(await call("views.push", { trigger_id: slack.trigger("U0002", three.view.id), view: modal("Four") })).toMatchObject({ ok: false, error: "push_limit_reached" });
    slack.closeView(two.view.id);
    expect(slack.modalStack("U0002").map((v) => v.id)).toEqual([root.view.id]);
    expect(await call("views.update", { view_id: two.view.id, view: modal("Gone") })).toMatchObject({ ok: false, error: "not_found" });
    // Another user's modals are theirs.
    expect(slack.modalStack("U0003")).toEqual([]);
  });

  it("publishes a Home per user under one id, each with a new hash; a stale hash is a conflict", async () => {
    const home = { type: "home", blocks: [{ type: "section", text: { type: "mrkdwn", text: "Your VMs" } }] };
    const first = await call("views.publish", { user_id: "U0002", view: home });
    const second = await call("views.publish", { user_id: "U0002", view: home, hash: first.view.hash });
    expect(second.view.id).toBe(first.view.id);
    expect(second.view.hash).not.toBe(first.view.hash);
    expect(await call("views.publish", { user_id: "U0002", view: home, hash: first.view.hash })).toMatchObject({ ok: false, error: "hash_conflict" });
    expect(slack.home("U0002")?.id).toBe(first.view.id);
    expect(slack.home("U0003")).toBeUndefined();
    expect(await call("views.publish", { user_id: "U0002", view: modal("x") })).toMatchObject({ ok: false, error: "invalid_arguments" });
  });

  it("posts to a user id in the app's DM with them and answers that channel; conversations.open answers it too; ts are unique", async () => {
    const a = await call("chat.postMessage", { channel: "U0002", text: "hi" });
    const b = await call("chat.postMessage", { channel: "U0002", text: "again" });
    expect(a.channel).toBe(slack.dmChannel("U0002"));
    expect(slack.dmUser(a.channel)).toBe("U0002");
    expect(a.ts).toMatch(/^\d+\.\d{6}$/);
    expect(b.ts).not.toBe(a.ts);
    expect(await call("conversations.open", { users: "U0002" })).toMatchObject({ ok: true, channel: { id: a.channel } });
    expect(await call("chat.postMessage", { channel: "C0001", text: "in the channel" })).toMatchObject({ ok: true, channel: "C0001" });
  });
});
