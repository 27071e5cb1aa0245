import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blockActionsBody, postSigned } from "@iaas/testkit";
import { SIGNING_SECRET, startSystem, type System } from "./harness.js";
import { finalPost, fingerprint, inventory, postsMatching, textOf } from "./helpers.js";

/**
 * `/iaas create` and `/iaas deploy` alone open a modal (views.open with the command's
 * trigger_id); its submission runs the command it spells through the slash path, so a form can
 * do nothing the typed command would refuse. Over signed HTTP, against the Slack stand-in.
 */
describe("forms: create and deploy in a modal", () => {
  let sys: System;
  beforeAll(async () => {
    // Not a real token: the stand-in takes any; views.open needs one to be configured.
    sys = await startSystem({ gatewayEnv: { SLACK_BOT_TOKEN: "e2e-forms-bot" } });
  });
  afterAll(async () => {
    await sys?.stop();
  });

  type View = { callback_id: string; private_metadata: string; blocks: { block_id?: string; element?: { options?: { value: string; text: { text: string } }[] } }[] };

  /** Opens the form as `user` and answers the view views.open got and the slash command's response_url. */
  async function open(kind: "create" | "deploy", user = "UFORM1"): Promise<{ view: View; responseUrl: string }> {
    const trigger = `${Date.now()}.1.${randomUUID()}`;
    const r = await sys.slash(kind, { user_id: user, trigger_id: trigger });
    expect(r.status).toBe(200);
    expect(r.body).toBe("");
    const call = await sys.slack.waitFor((calls) => calls.find((c) => c.method === "views.open" && c.body.trigger_id === trigger));
    const view = JSON.parse(String(call.body.view)) as View;
    return { view, responseUrl: r.responseUrl };
  }

  async function submit(view: Pick<View, "callback_id" | "private_metadata">, values: Record<string, Record<string, unknown>>, user = "UFORM1") {
    const payload = {
      type: "view_submission",
      team: { id: "T0001", domain: "example" },
      user: { id: user, team_id: "T0001" },
      api_app_id: "A0001",
      trigger_id: `${Date.now()}.2.${randomUUID()}`,
      view: { id: "V00000001", type: "modal", callback_id: view.callback_id, private_metadata: view.private_metadata, state: { values }, hash: "1.1" },
    };
    const r = await postSigned(sys.gatewayUrl, blockActionsBody(payload), { secret: SIGNING_SECRET });
    expect(r.status).toBe(200);
    return r.json as { response_action?: string; errors?: Record<string, string>; view?: unknown } | undefined;
  }

  const values = (name: string, size: string) => ({
    name: { value: { type: "plain_text_input", value: name } },
    size: { value: { type: "static_select", selected_option: { value: size } } },
  });

  it("opens the create modal with the command's trigger_id, the policy's sizes and those that need approval", async () => {
    const { view } = await open("create");
    expect(view.callback_id).toBe("iaas.form.create");
    const sizes = view.blocks.find((b) => b.block_id === "size")!.element!.options!;
    expect(sizes.map((o) => o.value)).toEqual(["small", "medium", "large", "xlarge"]);
    expect(sizes.find((o) => o.value === "xlarge")!.text.text).toMatch(/8 vCPU · 32 GB · 200 GB disk \(needs approval\)/);
    expect(view.blocks.map((b) => b.block_id)).toEqual(["name", "size", "lease"]);
  });

  it("creates the VM of the chosen size on submission, answered where the form was opened", async () => {
    const { view, responseUrl } = await open("create");
    expect(await submit(view, values("form-vm-1", "medium"))).toBeUndefined();
    const [accepted] = await postsMatching(sys, responseUrl, (t) => t.includes("Creating"));
    expect(textOf(accepted!.body)).toContain("form-vm-1");
    expect(await finalPost(sys, responseUrl)).toMatch(/^:white_check_mark:/);
    const vm = (await inventory(sys)).get("form-vm-1");
    expect(vm).toMatchObject({ cpu: 2, memoryMB: 4096 });
  });

  it("answers a bad name on the name field, and nothing runs", async () => {
    const { view } = await open("create");
    const before = await fingerprint(sys);
    const r = await submit(view, values("Bad_Name", "small"));
    expect(r?.response_action).toBe("errors");
    expect(r?.errors?.name).toMatch(/cannot be used as a VM name/);
    const spaced = await submit(view, values("two words", "small"));
    expect(spaced?.errors?.name).toMatch(/one word/);
    expect(await fingerprint(sys)).toBe(before);
  });

  it("refuses a size that was not offered on the size field", async () => {
    const { view } = await open("create");
    const r = await submit(view, values("form-vm-2", "huge"));
    expect(r?.response_action).toBe("errors");
    expect(Object.keys(r?.errors ?? {})).toEqual(["size"]);
    expect((await inventory(sys)).has("form-vm-2")).toBe(false);
  });

  it("refuses tampered metadata, another user's form and a callback id it never issued; nothing runs", async () => {
    const { view } = await open("create");
    const before = await fingerprint(sys);
    const [body, mac] = view.private_metadata.split(".");
    const state = JSON.parse(Buffer.from(body!, "base64url").toString()) as Record<string, unknown>;
    const forged = `${Buffer.from(JSON.stringify({ ...state, c: "C0NOTMINE" })).toString("base64url")}.${mac}`;
    const tampered = await submit({ ...view, private_metadata: forged }, values("form-vm-3", "small"));
    expect(tampered?.response_action).toBe("update");
    expect(JSON.stringify(tampered?.view)).toMatch(/changed outside Slack.*Nothing was done/);
    const other = await submit(view, values("form-vm-3", "small"), "UOTHER1");
    expect(JSON.stringify(other?.view)).toMatch(/opened by someone else/);
    const unknown = await submit({ ...view, callback_id: "iaas.form.rm-rf" }, values("form-vm-3", "small"));
    expect(JSON.stringify(unknown?.view)).toMatch(/not one the IaaS app opened/);
    const foreign = await submit({ ...view, callback_id: "someone.else" }, values("form-vm-3", "small"));
    expect(JSON.stringify(foreign?.view)).toMatch(/not one the IaaS app opened/);
    expect(await fingerprint(sys)).toBe(before);
  });

  it("loads the deploy form's templates from the proxy, and answers a 10 kB query with no options", async () => {
    const { view } = await open("deploy");
    expect(view.blocks.map((b) => b.block_id)).toEqual(["name", "template", "size", "lease"]);
    const suggest = async (value: string) => {
      const payload = { type: "block_suggestion", user: { id: "UFORM1", team_id: "T0001" }, team: { id: "T0001" }, action_id: "iaas.form.template", block_id: "template", value, view: { id: "V1", callback_id: view.callback_id, private_metadata: view.private_metadata } };
      const r = await postSigned(sys.gatewayUrl, blockActionsBody(payload), { secret: SIGNING_SECRET });
      expect(r.status).toBe(200);
      return (r.json as { options: { value: string }[] }).options;
    };
    const all = await suggest("");
    expect(all.length).toBeGreaterThan(0);
    expect(await suggest("x".repeat(10_000))).toEqual([]);
    const template = all[0]!.value;
    const before = await fingerprint(sys);
    const bogus = await submit(view, { ...values("form-vm-4", "small"), template: { "iaas.form.template": { type: "external_select", selected_option: { value: "no-such-template" } } } });
    expect(bogus?.errors?.template).toMatch(/no template/);
    expect(await fingerprint(sys)).toBe(before);
    expect(template).toBeTruthy();
  });

  describe("the App Home", () => {
    type HomeView = { type: string; private_metadata: string; blocks: { type: string; text?: { text: string }; elements?: { action_id: string; value: string; text: { text: string } }[] }[] };
    const published = async (user: string, after: number) =>
      sys.slack.waitFor((calls) => {
        const c = calls.filter((x) => x.method === "views.publish" && x.body.user_id === user && x.at >= after).at(-1);
        return c && (JSON.parse(String(c.body.view)) as HomeView);
      });
    const openHome = async (user: string) => {
      const at = Date.now();
      const body = JSON.stringify({ token: "t", team_id: "T0001", api_app_id: "A0001", type: "event_callback", event_id: `Ev${randomUUID().slice(0, 8)}`, event_time: Math.floor(at / 1000), event: { type: "app_home_opened", user, channel: "D0HOME1", tab: "home", event_ts: `${at / 1000}` } });
      const r = await postSigned(sys.gatewayUrl, body, { secret: SIGNING_SECRET });
      expect(r.status).toBe(200);
      return published(user, at);
    };

    it("publishes the user's VMs with buttons that work: Power off powers it off, answered in their DM", async () => {
      await sys.adopt("DC0_H0_VM0", "UHOME1");
      const home = await openHome("UHOME1");
      expect(home.type).toBe("home");
      const text = JSON.stringify(home.blocks);
      expect(text).toContain("DC0_H0_VM0");
      expect(text).toContain("Approvals waiting for you");
      expect(text).toContain("Your quota");
      // Only the user's own VMs: the other demo VMs have no owner.
      expect(text).not.toContain("DC0_H0_VM1");
      const buttons = home.blocks.flatMap((b) => b.elements ?? []);
      const off = buttons.find((e) => e.value === "power off DC0_H0_VM0")!;
      expect(off.action_id).toBe("iaas.run");
      expect(buttons.some((e) => e.value === "delete DC0_H0_VM0")).toBe(true);
      const at = Date.now();
      const click = {
        type: "block_actions",
        user: { id: "UHOME1", team_id: "T0001" },
        team: { id: "T0001" },
        api_app_id: "A0001",
        container: { type: "view", view_id: "V0HOME" },
        trigger_id: `${Date.now()}.3.${randomUUID()}`,
        view: { id: "V0HOME", type: "home", private_metadata: home.private_metadata },
        actions: [{ type: "button", action_id: off.action_id, value: off.value, action_ts: `${Date.now() / 1000}` }],
      };
      expect((await postSigned(sys.gatewayUrl, blockActionsBody(click), { secret: SIGNING_SECRET })).status).toBe(200);
      await sys.slack.waitFor((calls) => calls.find((c) => c.method === "chat.postMessage" && c.body.channel === "UHOME1" && String(c.body.text).includes("Powering off")));
      await sys.slack.waitFor((calls) => calls.find((c) => c.method === "chat.postMessage" && c.body.channel === "UHOME1" && String(c.body.text).startsWith(":white_check_mark:")));
      expect((await inventory(sys)).get("DC0_H0_VM0")?.powerState).toBe("poweredOff");
      // Refreshed after the command finished: now it offers Power on.
      await sys.slack.waitFor((calls) =>
        calls.some((c) => c.method === "views.publish" && c.body.user_id === "UHOME1" && c.at >= at && String(c.body.view).includes("power on DC0_H0_VM0")),
      );
      // A click with someone else's Home metadata runs nothing.
      const forged = { ...click, user: { id: "UOTHER2", team_id: "T0001" }, trigger_id: `${Date.now()}.4.${randomUUID()}`, actions: [{ ...click.actions[0]!, value: "power on DC0_H0_VM0" }] };
      await postSigned(sys.gatewayUrl, blockActionsBody(forged), { secret: SIGNING_SECRET });
      await new Promise((r) => setTimeout(r, 500));
      expect(sys.slack.apiCalls("chat.postMessage").some((c) => c.body.channel === "UOTHER2")).toBe(false);
      expect((await inventory(sys)).get("DC0_H0_VM0")?.powerState).toBe("poweredOff");
    });

    it("an info answer carries the actions the caller may take on that VM", async () => {
      const mine = await sys.slash("info DC0_H0_VM0", { user_id: "UHOME1" });
      const values = JSON.stringify(mine.json);
      expect(values).toContain("power on DC0_H0_VM0");
      expect(values).toContain("delete DC0_H0_VM0");
      const admin = await sys.slash("info DC0_H0_VM1", { user_id: "UADMIN1" });
      expect(JSON.stringify(admin.json)).toContain("power off DC0_H0_VM1");
    });
  });
});
