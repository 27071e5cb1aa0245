import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Subjects, type Notice } from "@iaas/contracts";
import { encodeJson } from "@iaas/runtime";
import { blockActionsBody, postSigned, waitUntil } from "@iaas/testkit";
import { SECRET, startHarness, testPolicy, type Harness } from "./harness.js";

/**
 * The gateway alone (real nats-server, the Slack stand-in, no vCenter): the per-user rate limit,
 * clicks that must do nothing, and the notify relay.
 */
describe("gateway: rate limit, clicks, notices", () => {
  let h: Harness;
  let minute = 0;
  beforeAll(async () => {
    h = await startHarness(
      { SLACK_BOT_TOKEN: "xoxb-fake-1", SLACK_NOTIFY_CHANNEL: "C0NOTIFY" },
      // Minute 1000 of the epoch and on: the rate-limit window is the clock's minute.
      { policy: testPolicy({ rateLimit: { perUserPerMinute: 3 } }), now: () => (1000 + minute) * 60_000 + 30_000 },
    );
  });
  afterAll(async () => {
    await h?.close();
  });
  // A fresh rate-limit window per test: the harness's sentinel commands count too.
  beforeEach(() => {
    minute += 1;
  });

  const text = (json: unknown) => String((json as { text?: string }).text ?? "");

  it("refuses a user's commands beyond the policy's rate, per user, until the next minute; a Slack retry does not count", async () => {
    const trigger = `${Date.now()}.1.${randomUUID()}`;
    for (let i = 0; i < 3; i++) {
      const r = await h.slash("sizes", { user_id: "U0RATE", ...(i === 0 ? { trigger_id: trigger } : {}) });
      expect(text(r.json), `command ${i + 1}`).toContain("VM sizes");
    }
    const retry = await h.slash("sizes", { user_id: "U0RATE", trigger_id: trigger }, { "x-slack-retry-num": "1" });
    expect(text(retry.json)).toContain("VM sizes");
    const leaked = await h.publishedBy(async () => {
      const over = await h.slash("power off web-01", { user_id: "U0RATE" });
      expect(text(over.json)).toMatch(/^:warning: You have sent 3 commands in the last minute, the most the policy allows; nothing was done\. Wait a minute and try again\. \(request `r-[a-z2-7]{24}`\)$/);
    });
    expect(leaked).toEqual([]);
    const someoneElse = await h.slash("sizes", { user_id: "U0OTHER" });
    expect(text(someoneElse.json)).toContain("VM sizes");
    minute += 1;
    const next = await h.slash("sizes", { user_id: "U0RATE" });
    expect(text(next.json)).toContain("VM sizes");
  });

  describe("clicks that must do nothing", () => {
    const clickBody = (value: string, responseUrl: string, userId = "U0ALICE") =>
      blockActionsBody({
        type: "block_actions",
        user: { id: userId },
        team: { id: "T0TEAM" },
        response_url: responseUrl,
        actions: [{ type: "button", action_id: "iaas.confirm", value }],
      });

    it("a click for a confirmation that does not exist publishes nothing and says it is no longer valid", async () => {
      const responseUrl = h.slack.responseUrl();
      const leaked = await h.publishedBy(async () => {
        const r = await postSigned(h.url, clickBody("r-aaaaaaaaaaaaaaaaaaaaaaaa", responseUrl), { secret: SECRET });
        expect(r.status).toBe(200);
        await h.slack.waitFor((calls) => calls.some((c) => c.path === new URL(responseUrl).pathname));
      });
      expect(leaked).toEqual([]);
      expect(h.slack.postsTo(responseUrl).map((c) => c.body)).toEqual([
        { response_type: "ephemeral", replace_original: false, text: ":hourglass: This confirmation is no longer valid; nothing was done. Run the command again." },
      ]);
    });

    it("an unsigned click is refused with 401", async () => {
      const responseUrl = h.slack.responseUrl();
      const r = await postSigned(h.url, clickBody("r-aaaaaaaaaaaaaaaaaaaaaaaa", responseUrl), { secret: "not-the-secret" });
      expect(r.status).toBe(401);
    });

    it("a click whose response_url is not Slack's gets no post, and the confirmation stays pending", async () => {
      const ask = await h.slash("delete web-07");
      const id = /\(request `(r-[a-z2-7]{24})`\)/.exec(text(ask.json))?.[1];
      expect(id).toBeTruthy();
      const leaked = await h.publishedBy(async () => {
        const r = await postSigned(h.url, clickBody(id!, "https://evil.example/x"), { secret: SECRET });
        expect(r.status).toBe(200);
      });
      expect(leaked).toEqual([]);
      // Still pending: the requester's real click goes through.
      minute += 1;
      const responseUrl = h.slack.responseUrl();
      const published = await h.publishedBy(async () => {
        await postSigned(h.url, clickBody(id!, responseUrl), { secret: SECRET });
        await h.slack.waitFor((calls) => calls.some((c) => c.path === new URL(responseUrl).pathname));
        await waitUntil("the confirmed command", async () => (await h.commands()).some((c) => c.body.id === id));
      });
      expect(published.map((c) => [c.subject, c.body.id])).toEqual([["iaas.cmd.vm.delete", id]]);
    });
  });

  it("a Slack retry of a delete whose buttons were already answered shows no new buttons", async () => {
    const trigger = `${Date.now()}.3.${randomUUID()}`;
    const ask = await h.slash("delete web-08", { trigger_id: trigger });
    const id = /\(request `(r-[a-z2-7]{24})`\)/.exec(text(ask.json))?.[1];
    const responseUrl = h.slack.responseUrl();
    await postSigned(
      h.url,
      blockActionsBody({ type: "block_actions", user: { id: "U0ALICE" }, team: { id: "T0TEAM" }, response_url: responseUrl, actions: [{ type: "button", action_id: "iaas.cancel", value: id }] }),
      { secret: SECRET },
    );
    await h.slack.waitFor((calls) => calls.some((c) => c.path === new URL(responseUrl).pathname));
    const retry = await h.slash("delete web-08", { trigger_id: trigger }, { "x-slack-retry-num": "1" });
    expect(retry.json).toEqual({ response_type: "ephemeral", text: `This request was already cancelled; nothing more was done. (request \`${id}\`)` });
  });

  describe("notices", () => {
    const notice = (id: string): Notice => ({ id, kind: "remediation.action", severity: "info", text: "Added 1 vCPU to `web-01` (now 3) after *VM CPU Usage* turned red.", vm: "web-01", cause: "vcsim#42", at: new Date().toISOString() });

    it("posts each notice once to the notify channel, however often it is published", async () => {
      const id = `n-${randomUUID()}`;
      for (let i = 0; i < 3; i++) h.nc.publish(Subjects.notify("remediation"), encodeJson(notice(id)));
      h.nc.publish(`${Subjects.notify("remediation")}.action`, encodeJson(notice(id)));
      const other = `n-${randomUUID()}`;
      h.nc.publish(`${Subjects.notify("remediation")}.action`, encodeJson(notice(other)));
      await h.slack.waitFor((calls) => calls.some((c) => c.method === "chat.postMessage" && String(c.body.text).includes("vCPU") && JSON.stringify(c.body).includes("C0NOTIFY") && calls.filter((x) => x.method === "chat.postMessage").length >= 2));
      // Barrier: one more notice, posted after the others were handled.
      const last = `n-${randomUUID()}`;
      h.nc.publish(Subjects.notify("remediation"), encodeJson({ ...notice(last), text: "barrier" }));
      await h.slack.waitFor((calls) => calls.some((c) => c.method === "chat.postMessage" && c.body.text === ":information_source: barrier"));
      const posts = h.slack.apiCalls("chat.postMessage").filter((c) => c.body.channel === "C0NOTIFY");
      expect(posts.map((c) => c.body.text)).toEqual([
        ":information_source: Added 1 vCPU to `web-01` (now 3) after *VM CPU Usage* turned red.",
        ":information_source: Added 1 vCPU to `web-01` (now 3) after *VM CPU Usage* turned red.",
        ":information_source: barrier",
      ]);
    });

    it("drops a malformed notice and keeps relaying", async () => {
      const before = h.slack.apiCalls("chat.postMessage").length;
      h.nc.publish(Subjects.notify("remediation"), new TextEncoder().encode("{not json"));
      h.nc.publish(Subjects.notify("remediation"), encodeJson({ id: "short", text: "x" }));
      const id = `n-${randomUUID()}`;
      h.nc.publish(Subjects.notify("remediation"), encodeJson({ ...notice(id), severity: "error", text: "after the bad ones" }));
      await h.slack.waitFor((calls) => calls.some((c) => c.method === "chat.postMessage" && c.body.text === ":rotating_light: after the bad ones"));
      expect(h.slack.apiCalls("chat.postMessage").length).toBe(before + 1);
    });
  });
});
