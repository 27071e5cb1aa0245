import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blockActionsBody, postSigned, waitUntil, type RecordedCall } from "@iaas/testkit";
import { connect } from "@nats-io/transport-node";
import { createLogger, createMetrics } from "@iaas/runtime";
import { GatewayEnvSchema, buildGateway } from "@iaas/gateway";
import { SIGNING_SECRET, startSystem, type System } from "./harness.js";
import { actor, clickPayload, inventory, natsId, now, postsMatching, publishCommand, textOf, waitFor } from "./helpers.js";

const CHANNEL = "CAPPROVE1";
const HOUR = 60 * 60_000;

/**
 * Approvals end to end: the default policy's `big-sizes` rule (size xlarge needs one admin's yes),
 * over signed HTTP with two gateway replicas, the simulator and the Slack stand-in. The gateway's
 * clock is the test's (`offset`), so the 24-hour expiry and the reminder at half of it are reached
 * by moving it; each replica sweeps the bucket every second.
 */
describe("approvals: a yes from an approver, in Slack", () => {
  let sys: System;
  let offset = 0;
  beforeAll(async () => {
    sys = await startSystem({
      admins: "UADMIN,UADMIN2",
      now: () => Date.now() + offset,
      gatewayReplicas: 2,
      gatewayEnv: { SLACK_BOT_TOKEN: "e2e-bot-token-not-real", SLACK_NOTIFY_CHANNEL: "CNOTIFY1", SLACK_APPROVALS_CHANNEL: CHANNEL, APPROVALS_SWEEP_S: "1" },
    });
  });
  afterAll(async () => {
    await sys?.stop();
  });

  const json = (c: RecordedCall) => JSON.stringify(c.body);
  /** The card posted for `vm`, and the approval id its buttons carry. */
  const cardFor = async (vm: string) => {
    const [card] = await sys.slack.waitFor(() => {
      const hits = sys.slack.apiCalls("chat.postMessage").filter((c) => (c.body as { channel?: string }).channel === CHANNEL && json(c).includes(vm) && json(c).includes("approval.approve"));
      return hits.length > 0 && hits;
    }, 30_000);
    const id = /"(ap-r-[a-z2-7]{24})"|\\"(ap-r-[a-z2-7]{24})\\"/.exec(json(card!));
    return { card: card!, approvalId: (id?.[1] ?? id?.[2])! };
  };
  /** A signed click on the card's button as `userId`, to replica `via`; the clicker's private answer. */
  const clickAs = async (userId: string, action: "iaas.approval.approve" | "iaas.approval.reject", value: string, via = 0) => {
    const responseUrl = sys.slack.responseUrl(`click-${randomUUID()}`);
    const r = await postSigned(sys.gatewayUrls[via]!, blockActionsBody(clickPayload({ userId, action, value, channelId: CHANNEL }, responseUrl)), { secret: SIGNING_SECRET });
    expect(r.status).toBe(200);
    return responseUrl;
  };
  const saidTo = async (responseUrl: string) => textOf((await postsMatching(sys, responseUrl, () => true))[0]!.body);
  const dmsTo = (user: string, pred: (t: string) => boolean) =>
    sys.slack.waitFor(() => {
      const hits = sys.slack.apiCalls("chat.postMessage").filter((c) => (c.body as { channel?: string }).channel === user && pred(String((c.body as { text?: string }).text ?? "")));
      return hits.length > 0 && hits;
    }, 30_000);
  /** chat.update calls of the card about `vm`. */
  const updatesOf = (vm: string, pred: (t: string) => boolean) =>
    sys.slack.waitFor(() => {
      const hits = sys.slack.apiCalls("chat.update").filter((c) => (c.body as { channel?: string }).channel === CHANNEL && json(c).includes(vm) && pred(json(c)));
      return hits.length > 0 && hits;
    }, 30_000);

  let big01: string;

  it("makes `create big-01 xlarge` wait: the ack says for whom and until when, the card goes to the approvers' channel", async () => {
    const r = await sys.slash("create big-01 xlarge", { user_id: "UALICE" });
    expect(r.status).toBe(200);
    const ack = textOf(r.json);
    expect(ack).toMatch(/needs an approval/);
    expect(ack).toMatch(/size `xlarge` needs an approval/);
    expect(ack).toMatch(/It waits for <@UADMIN>, <@UADMIN2> until <!date\^/);
    expect(ack).toMatch(/\(request `r-[a-z2-7]{24}`\)/);
    const { card, approvalId } = await cardFor("big-01");
    big01 = approvalId;
    expect(json(card)).toContain("<@UALICE>");
    expect(json(card)).toContain("8 vCPU");
    expect(json(card)).toContain("big-sizes");
    expect(json(card)).toContain("Quota after");
    expect((await inventory(sys)).has("big-01")).toBe(false);
    // The sweep's gauges: one request waiting, for as long as it has existed.
    const gauge = async (name: string) => (await sys.metrics.gateway.registry.getSingleMetric(name)!.get()).values[0]?.value ?? -1;
    await waitUntil("the approval sweep counted the request", async () => (await gauge("iaas_gateway_approvals_pending")) === 1);
    expect(await gauge("iaas_gateway_approval_oldest_pending_seconds")).toBeGreaterThanOrEqual(0);
  });

  it("changes nothing on the requester's own Approve, or a non-approver's, and says why", async () => {
    expect(await saidTo(await clickAs("UALICE", "iaas.approval.approve", big01))).toMatch(/You asked for this, so you cannot decide it/);
    expect(await saidTo(await clickAs("UBOB", "iaas.approval.approve", big01, 1))).toMatch(/Only <@UADMIN>, <@UADMIN2> may decide this request; nothing was done/);
    // The sweep runs every second on both replicas: give it a few, nothing may start.
    await new Promise((r) => setTimeout(r, 2_500));
    expect((await inventory(sys)).has("big-01")).toBe(false);
  });

  it("runs it on an admin's Approve (on the other replica): 8 vCPU / 32 GB, the card updated, the requester told", async () => {
    await clickAs("UADMIN", "iaas.approval.approve", big01, 1);
    const vm = await waitFor(async () => (await inventory(sys)).get("big-01"));
    expect(vm.cpu).toBe(8);
    expect(vm.memoryMB).toBe(32 * 1024);
    const [update] = await updatesOf("big-01", (t) => t.includes("Approved by <@UADMIN>"));
    expect(json(update!)).not.toContain("approval.approve");
    const [dm] = await dmsTo("UALICE", (t) => t.includes("was approved by <@UADMIN>"));
    expect(textOf(dm!.body)).toContain("big-01");
  });

  it("names the approver in the audit trail", async () => {
    const text = await waitFor(async () => {
      const r = await sys.slash("audit big-01", { user_id: "UADMIN" });
      const t = textOf(r.json);
      return /vm\.create big-01: succeeded approved by UADMIN/.test(t) ? t : undefined;
    });
    expect(text).toMatch(/UALICE vm\.create big-01: succeeded approved by UADMIN/);
  });

  it("does nothing more on a replayed click, and says it was decided", async () => {
    expect(await saidTo(await clickAs("UADMIN2", "iaas.approval.approve", big01))).toMatch(/already approved by <@UADMIN>/);
    expect((await inventory(sys)).get("big-01")?.count).toBe(1);
  });

  /** A signed Reject click as `userId` with the trigger_id `trigger` (one the stand-in handed out, or a used one). */
  const rejectWith = async (userId: string, value: string, trigger: string) => {
    const responseUrl = sys.slack.responseUrl(`click-${randomUUID()}`);
    const payload = { ...clickPayload({ userId, action: "iaas.approval.reject", value, channelId: CHANNEL }, responseUrl), trigger_id: trigger };
    const r = await postSigned(sys.gatewayUrls[0]!, blockActionsBody(payload), { secret: SIGNING_SECRET });
    expect(r.status).toBe(200);
    return responseUrl;
  };
  type ReasonView = { callback_id: string; private_metadata: string; blocks: { type: string; block_id?: string; element?: { type: string; max_length?: number } }[] };
  /** The modal views.open got for `trigger`. */
  const modalFor = async (trigger: string) => {
    const call = await sys.slack.waitFor((calls) => calls.find((c) => c.method === "views.open" && c.body.trigger_id === trigger), 30_000);
    return JSON.parse(String(call.body.view)) as ReasonView;
  };
  /** The modal submitted as `userId` (signed, as Slack sends it) with `reason`; the gateway's answer in the ack. */
  const submitReason = async (userId: string, view: Pick<ReasonView, "callback_id" | "private_metadata">, reason: string | undefined, via = 0) => {
    const payload = {
      type: "view_submission",
      team: { id: "T0001", domain: "example" },
      user: { id: userId, team_id: "T0001" },
      api_app_id: "A0001",
      trigger_id: sys.slack.trigger(userId),
      view: { id: `V${randomUUID().slice(0, 8).toUpperCase()}`, type: "modal", callback_id: view.callback_id, private_metadata: view.private_metadata, state: { values: reason === undefined ? {} : { reason: { value: { type: "plain_text_input", value: reason } } } }, hash: "1.1" },
    };
    const r = await postSigned(sys.gatewayUrls[via]!, blockActionsBody(payload), { secret: SIGNING_SECRET });
    expect(r.status).toBe(200);
    return r.json as { response_action?: string; errors?: Record<string, string>; view?: unknown } | undefined;
  };
  /** Whether `vm`'s request is still listed as waiting for UADMIN's decision. */
  const stillPending = async (vm: string) => JSON.stringify((await sys.slash("approvals", { user_id: "UADMIN" })).json).includes(vm);

  it("asks an approver's Reject for a reason in a modal; the submission rejects with it: card, requester and audit carry it, escaped", async () => {
    await sys.slash("create big-02 xlarge", { user_id: "UALICE" });
    const { approvalId } = await cardFor("big-02");
    const opened = sys.slack.apiCalls("views.open").length;
    // A non-approver's Reject opens nothing and is told why.
    expect(await saidTo(await rejectWith("UBOB", approvalId, sys.slack.trigger("UBOB")))).toMatch(/Only <@UADMIN>, <@UADMIN2> may decide/);
    expect(sys.slack.apiCalls("views.open")).toHaveLength(opened);
    // Both admins click Reject: each gets the modal (views.open with the click's trigger_id), nothing is decided yet.
    const t2 = sys.slack.trigger("UADMIN2");
    await rejectWith("UADMIN2", approvalId, t2);
    const view = await modalFor(t2);
    expect(view.callback_id).toBe("iaas.approval.reject-reason");
    expect(view.private_metadata).toBe(approvalId);
    const input = view.blocks.find((b) => b.type === "input")!;
    expect(input).toMatchObject({ block_id: "reason", optional: true, element: { type: "plain_text_input", max_length: 500 } });
    expect(sys.slack.modalStack("UADMIN2").map((v) => v.view.callback_id)).toEqual(["iaas.approval.reject-reason"]);
    const t1 = sys.slack.trigger("UADMIN");
    await rejectWith("UADMIN", approvalId, t1);
    const other = await modalFor(t1);
    expect(await stillPending("big-02")).toBe(true);
    // The modal's metadata submitted by someone else: the decider is the submission's user, checked as a click is.
    expect(JSON.stringify(await submitReason("UBOB", view, "no"))).toMatch(/Only <@UADMIN>, <@UADMIN2> may decide this request; nothing was done/);
    expect(JSON.stringify(await submitReason("UALICE", view, "no"))).toMatch(/You asked for this, so you cannot decide it/);
    const long = await submitReason("UADMIN2", view, "x".repeat(501));
    expect(long?.response_action).toBe("errors");
    expect(long?.errors?.reason).toMatch(/At most 500 characters/);
    expect(await stillPending("big-02")).toBe(true);

    const reason = "Too big for a test VM: <!channel> & <https://evil.example|click here>, ask for large";
    const escaped = "Too big for a test VM: &lt;!channel&gt; &amp; &lt;https://evil.example|click here&gt;, ask for large";
    expect(await submitReason("UADMIN2", view, `  ${reason}  `, 1)).toBeUndefined();
    const [update] = await updatesOf("big-02", (t) => t.includes("Rejected by <@UADMIN2>"));
    expect(json(update!)).toContain(`*Reason:* ${escaped}`);
    expect(json(update!)).not.toContain("<!channel>");
    expect(json(update!)).not.toContain("approval.reject");
    const [dm] = await dmsTo("UALICE", (t) => t.includes("big-02") && t.includes("was rejected by <@UADMIN2>"));
    expect(textOf(dm!.body)).toContain(`*Reason:* ${escaped}`);
    expect(textOf(dm!.body)).not.toContain("<!channel>");
    const trail = await waitFor(async () => {
      const t = textOf((await sys.slash("audit big-02", { user_id: "UADMIN" })).json);
      return /UADMIN2 approval\.big-sizes big-02: rejected: /.test(t) && /UALICE vm\.create big-02: rejected/.test(t) ? t : undefined;
    });
    expect(trail).toContain(`UADMIN2 approval.big-sizes big-02: rejected: ${escaped}`);

    // The other admin's modal, submitted after the decision: answered in the modal, nothing changes.
    const late = await submitReason("UADMIN", other, "me too");
    expect(late?.response_action).toBe("update");
    expect(JSON.stringify(late?.view)).toMatch(/already rejected by <@UADMIN2>/);
    expect(await saidTo(await clickAs("UADMIN", "iaas.approval.approve", approvalId))).toMatch(/already rejected/);
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await inventory(sys)).has("big-02")).toBe(false);
    expect(sys.slack.apiCalls("chat.postMessage").filter((c) => (c.body as { channel?: string }).channel === "UALICE" && json(c).includes("big-02") && json(c).includes("was rejected"))).toHaveLength(1);
  });

  it("rejects at once, without a reason, when the modal cannot be opened (a used trigger_id)", async () => {
    await sys.slash("create big-06 xlarge", { user_id: "UALICE" });
    const { approvalId } = await cardFor("big-06");
    const used = sys.slack.trigger("UADMIN");
    const opened = sys.slack.apiCalls("views.open").length;
    // The stand-in, as Slack, takes a trigger once: this one opens a modal of its own first.
    const first = await fetch(`${sys.slack.apiUrl}views.open`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ trigger_id: used, view: { type: "modal", title: { type: "plain_text", text: "Elsewhere" }, blocks: [] } }) });
    expect(((await first.json()) as { ok: boolean }).ok).toBe(true);
    await rejectWith("UADMIN", approvalId, used);
    const [update] = await updatesOf("big-06", (t) => t.includes("Rejected by <@UADMIN>"));
    expect(json(update!)).not.toContain("Reason:");
    await dmsTo("UALICE", (t) => t.includes("big-06") && t.includes("was rejected by <@UADMIN>"));
    // views.open was tried with the click's trigger (refused), and nothing else opened.
    expect(sys.slack.apiCalls("views.open").slice(opened).map((c) => c.body.trigger_id)).toEqual([used, used]);
  });

  it("settles two Approve clicks at once on two replicas once: one command, one VM, one word to the requester", async () => {
    await sys.slash("create big-03 xlarge", { user_id: "UCAROL" });
    const { approvalId } = await cardFor("big-03");
    await Promise.all([clickAs("UADMIN", "iaas.approval.approve", approvalId, 0), clickAs("UADMIN2", "iaas.approval.approve", approvalId, 1)]);
    await waitFor(async () => (await inventory(sys)).get("big-03"));
    await dmsTo("UCAROL", (t) => t.includes("big-03") && t.includes("was approved"));
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await inventory(sys)).get("big-03")?.count).toBe(1);
    expect(sys.slack.apiCalls("chat.postMessage").filter((c) => (c.body as { channel?: string }).channel === "UCAROL" && json(c).includes("was approved"))).toHaveLength(1);
  });

  it("reminds at half the time and expires at the end: card, requester, and a late click changes nothing", async () => {
    await sys.slash("create big-04 xlarge", { user_id: "UALICE" });
    const { approvalId } = await cardFor("big-04");
    offset += 13 * HOUR;
    await sys.slack.waitFor(() => sys.slack.apiCalls("chat.postMessage").some((c) => (c.body as { channel?: string }).channel === CHANNEL && json(c).includes("Reminder") && json(c).includes("big-04")), 30_000);
    offset += 12 * HOUR;
    await updatesOf("big-04", (t) => t.includes("Expired"));
    await dmsTo("UALICE", (t) => t.includes("big-04") && t.includes("expired"));
    expect(await saidTo(await clickAs("UADMIN", "iaas.approval.approve", approvalId))).toMatch(/already expired/);
    expect((await inventory(sys)).has("big-04")).toBe(false);
    // One reminder, however many replicas swept.
    expect(sys.slack.apiCalls("chat.postMessage").filter((c) => json(c).includes("Reminder") && json(c).includes("big-04"))).toHaveLength(1);
  });

  it("refuses the NATS path without an approval, or with one for another command", async () => {
    const base = { area: "vm" as const, action: "create" as const, actor: actor("UALICE"), issuedAt: now(), size: "xlarge" };
    const none = await publishCommand(sys, { ...base, id: natsId("nats"), name: "big-nats" });
    expect(none.status === "failed" && none.error.code).toBe("IAAS_APPROVAL_REQUIRED");
    expect(none.status === "failed" && none.error.message).toMatch(/big-sizes/);
    const other = await publishCommand(sys, { ...base, id: natsId("nats"), name: "big-01", approvalId: big01 });
    expect(other.status === "failed" && other.error.code).toBe("IAAS_APPROVAL_INVALID");
    expect((await inventory(sys)).has("big-nats")).toBe(false);
  });

  it("tells the clicker of a forged or unknown approval id, and runs nothing", async () => {
    expect(await saidTo(await clickAs("UADMIN", "iaas.approval.approve", "ap-r-aaaaaaaaaaaaaaaaaaaaaaaa"))).toMatch(/no longer valid/);
    expect(await saidTo(await clickAs("UADMIN", "iaas.approval.approve", "../../etc"))).toMatch(/no longer valid/);
  });

  it("lists what waits for the caller with /iaas approvals", async () => {
    await sys.slash("create big-05 xlarge", { user_id: "UALICE" });
    await cardFor("big-05");
    expect(textOf((await sys.slash("approvals", { user_id: "UALICE" })).json)).toMatch(/Your requests waiting for approval: 1/);
    const admin = (await sys.slash("approvals", { user_id: "UADMIN" })).json;
    expect(textOf(admin)).toMatch(/Waiting for your decision: 1/);
    expect(JSON.stringify(admin)).toContain("approval.approve");
    expect(textOf((await sys.slash("approvals", { user_id: "UBOB" })).json)).toMatch(/Nothing waits/);
  });

  it("takes the click on a gateway started after the request (a restart): the state is on NATS only", async () => {
    const { approvalId } = await cardFor("big-05");
    const nc = await connect({ servers: sys.nats.url, name: "gateway" });
    const config = GatewayEnvSchema.parse({
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_API_URL: sys.slack.apiUrl,
      GATEWAY_PORT: "0",
      GATEWAY_HOST: "127.0.0.1",
      IAAS_ADMINS: "UADMIN,UADMIN2",
      SLACK_BOT_TOKEN: "e2e-bot-token-not-real",
      SLACK_APPROVALS_CHANNEL: CHANNEL,
      APPROVALS_SWEEP_S: "1",
    });
    const fresh = buildGateway({ nc, config, log: createLogger("e2e", "silent"), metrics: createMetrics("gateway"), policy: sys.policy, now: () => Date.now() + offset });
    const { port } = await fresh.start();
    try {
      const responseUrl = sys.slack.responseUrl(`click-${randomUUID()}`);
      const r = await postSigned(`http://127.0.0.1:${port}/slack/events`, blockActionsBody(clickPayload({ userId: "UADMIN2", action: "iaas.approval.approve", value: approvalId, channelId: CHANNEL }, responseUrl)), { secret: SIGNING_SECRET });
      expect(r.status).toBe(200);
      const vm = await waitFor(async () => (await inventory(sys)).get("big-05"));
      expect(vm.cpu).toBe(8);
      await dmsTo("UALICE", (t) => t.includes("big-05") && t.includes("was approved by <@UADMIN2>"));
    } finally {
      await fresh.stop();
      await nc.close();
    }
  });

  it("refuses to start a gateway whose approval rules name a user group without a bot token", async () => {
    const { DEFAULT_POLICY, policyFromObject } = await import("@iaas/policy");
    const policy = policyFromObject(
      { ...structuredClone(DEFAULT_POLICY), approvals: { rules: [{ name: "by-group", commands: ["delete"], approvers: { groups: ["S0PLATFORM"] } }] } },
      { source: "e2e", env: {} },
    );
    const config = GatewayEnvSchema.parse({ SLACK_SIGNING_SECRET: SIGNING_SECRET, GATEWAY_PORT: "0" });
    expect(() => buildGateway({ nc: sys.nc, config, log: createLogger("e2e", "silent"), metrics: createMetrics("gateway"), policy })).toThrow(/SLACK_BOT_TOKEN|user groups/);
  });
});
