import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { blockActionsBody, postSigned, type RecordedCall } from "@iaas/testkit";
import { DEFAULT_POLICY } from "@iaas/policy";
import { SIGNING_SECRET, startSystem, type System } from "./harness.js";
import { actor, clickPayload, finalPost, inventory, natsId, now, postsMatching, publishCommand, textOf, waitFor } from "./helpers.js";

const CHANNEL = "CRULES01";

/**
 * Approval rules beyond the default one, end to end over signed HTTP: a rule that needs two
 * different approvers (`minApprovals: 2`), and a `quotaOverrun` rule, under which a create over
 * the requester's quota waits for an approver instead of being refused. Rules are tried in order.
 */
const POLICY = stringify({
  ...structuredClone(DEFAULT_POLICY),
  quotas: { ...structuredClone(DEFAULT_POLICY.quotas), users: { UOVER: { vms: 1 }, ULATE: { vms: 1 } } },
  approvals: {
    rules: [
      { name: "over-quota", commands: ["create"], when: { quotaOverrun: true }, approvers: { roles: ["admin"] } },
      { name: "two-keys", commands: ["create"], when: { names: ["twokey-*"] }, approvers: { roles: ["admin"] }, minApprovals: 2 },
    ],
  },
});

describe("approval rules: two approvers, and a quota overrun", () => {
  let sys: System;
  beforeAll(async () => {
    sys = await startSystem({
      admins: "UADMIN,UADMIN2",
      policyYaml: POLICY,
      gatewayEnv: { SLACK_BOT_TOKEN: "e2e-bot-token-not-real", SLACK_APPROVALS_CHANNEL: CHANNEL, APPROVALS_SWEEP_S: "1" },
    });
  });
  afterAll(async () => {
    await sys?.stop();
  });

  const json = (c: RecordedCall) => JSON.stringify(c.body);
  const cardFor = async (vm: string) => {
    const [card] = await sys.slack.waitFor(() => {
      const hits = sys.slack.apiCalls("chat.postMessage").filter((c) => (c.body as { channel?: string }).channel === CHANNEL && json(c).includes(`\`${vm}\``) && json(c).includes("approval.approve"));
      return hits.length > 0 && hits;
    }, 30_000);
    const id = /\\"(ap-r-[a-z2-7]{24})\\"|"(ap-r-[a-z2-7]{24})"/.exec(json(card!));
    return { card: card!, approvalId: (id?.[1] ?? id?.[2])! };
  };
  /** A signed Approve click as `userId`; its response_url (the clicker is answered there when the click changes nothing or is not the last yes). */
  const approveAs = async (userId: string, value: string) => {
    const responseUrl = sys.slack.responseUrl(`click-${randomUUID()}`);
    const r = await postSigned(sys.gatewayUrl, blockActionsBody(clickPayload({ userId, action: "iaas.approval.approve", value, channelId: CHANNEL }, responseUrl)), { secret: SIGNING_SECRET });
    expect(r.status).toBe(200);
    return responseUrl;
  };
  const saidTo = async (responseUrl: string) => textOf((await postsMatching(sys, responseUrl, () => true))[0]!.body);
  const updatesOf = (vm: string, pred: (t: string) => boolean) =>
    sys.slack.waitFor(() => {
      const hits = sys.slack.apiCalls("chat.update").filter((c) => (c.body as { channel?: string }).channel === CHANNEL && json(c).includes(`\`${vm}\``) && pred(json(c)));
      return hits.length > 0 && hits;
    }, 30_000);
  const dmsTo = (user: string, pred: (t: string) => boolean) =>
    sys.slack.waitFor(() => {
      const hits = sys.slack.apiCalls("chat.postMessage").filter((c) => (c.body as { channel?: string }).channel === user && pred(String((c.body as { text?: string }).text ?? "")));
      return hits.length > 0 && hits;
    }, 30_000);
  const auditLine = (vm: string, re: RegExp) =>
    waitFor(async () => {
      const t = textOf((await sys.slash(`audit ${vm}`, { user_id: "UADMIN" })).json);
      return re.test(t) ? t : undefined;
    });
  /** Whether `vm`'s request is still listed as waiting for `approver`'s decision. */
  const waitsFor = async (approver: string, vm: string) => JSON.stringify((await sys.slash("approvals", { user_id: approver })).json).includes(`\`${vm}\``);

  it("needs two different approvers under minApprovals: 2; one admin's yes leaves it pending (1 of 2), a second click by them does not count", async () => {
    const ack = textOf((await sys.slash("create twokey-01", { user_id: "UALICE" })).json);
    expect(ack).toMatch(/the name matches `twokey-\*`, rule `two-keys`\)\. It waits for <@UADMIN>, <@UADMIN2> \(2 of them\)/);
    const { card, approvalId } = await cardFor("twokey-01");
    expect(json(card)).toContain("(2 needed)");

    expect(await saidTo(await approveAs("UADMIN", approvalId))).toMatch(/Your approval is recorded; it waits for 1 more approver\(s\)/);
    const [update] = await updatesOf("twokey-01", (t) => t.includes("Approved so far by <@UADMIN> (1 of 2); 1 more needed."));
    // Still pending: the buttons stay on the card.
    expect(json(update!)).toContain("approval.approve");
    expect(await saidTo(await approveAs("UADMIN", approvalId))).toMatch(/You already approved this; it waits for 1 more approver\(s\)/);
    // The sweep runs every second: give it a few, the one yes (clicked twice) may start nothing.
    await new Promise((r) => setTimeout(r, 2_500));
    expect((await inventory(sys)).has("twokey-01")).toBe(false);
    expect(await waitsFor("UADMIN2", "twokey-01")).toBe(true);
  });

  it("runs it on the second approver's yes: the card and the audit name both", async () => {
    const { approvalId } = await cardFor("twokey-01");
    await approveAs("UADMIN2", approvalId);
    const vm = await waitFor(async () => (await inventory(sys)).get("twokey-01"));
    expect(vm.count).toBe(1);
    await updatesOf("twokey-01", (t) => t.includes("Approved by <@UADMIN>, <@UADMIN2>"));
    await dmsTo("UALICE", (t) => t.includes("twokey-01") && t.includes("was approved by <@UADMIN>, <@UADMIN2>"));
    const trail = await auditLine("twokey-01", /vm\.create twokey-01: succeeded approved by/);
    expect(trail).toMatch(/UALICE vm\.create twokey-01: succeeded approved by UADMIN, UADMIN2/);
  });

  it("makes a create over quota wait for an approver instead of refusing it; approved, it runs over the quota", async () => {
    const first = await sys.slash("create ovq-01", { user_id: "UOVER" });
    expect(await finalPost(sys, first.responseUrl)).toMatch(/^:white_check_mark:/);
    const ack = textOf((await sys.slash("create ovq-02", { user_id: "UOVER" })).json);
    expect(ack).toMatch(/this needs an approval \(over quota, rule `over-quota`\)/);
    expect(ack).not.toMatch(/quota exceeded|you use/i);
    const { card, approvalId } = await cardFor("ovq-02");
    expect(json(card)).toContain("2 of 1 VMs (over)");
    expect((await inventory(sys)).has("ovq-02")).toBe(false);
    await approveAs("UADMIN", approvalId);
    await waitFor(async () => (await inventory(sys)).get("ovq-02"));
    await dmsTo("UOVER", (t) => t.includes("ovq-02") && t.includes("was approved by <@UADMIN>"));
    await auditLine("ovq-02", /UOVER vm\.create ovq-02: succeeded approved by UADMIN/);
  });

  it("refuses an over-quota create on NATS without the approval the rule asks for", async () => {
    const r = await publishCommand(sys, { area: "vm", action: "create", actor: actor("UOVER"), issuedAt: now(), id: natsId("nats"), name: "ovq-nats", size: "small" });
    expect(r.status === "failed" && r.error.code).toBe("IAAS_APPROVAL_REQUIRED");
    expect(r.status === "failed" && r.error.message).toMatch(/over-quota/);
    expect((await inventory(sys)).has("ovq-nats")).toBe(false);
  });

  it("checks the quota again on approval: a request that fitted when asked but no longer does is refused then, and the card says so", async () => {
    // Within ULATE's one VM when asked, so it waits under `two-keys` (not `over-quota`).
    expect(textOf((await sys.slash("create twokey-late", { user_id: "ULATE" })).json)).toMatch(/rule `two-keys`/);
    const { approvalId } = await cardFor("twokey-late");
    const other = await sys.slash("create late-01", { user_id: "ULATE" });
    expect(await finalPost(sys, other.responseUrl)).toMatch(/^:white_check_mark:/);
    expect(await saidTo(await approveAs("UADMIN", approvalId))).toMatch(/waits for 1 more/);
    await approveAs("UADMIN2", approvalId);
    const [update] = await updatesOf("twokey-late", (t) => t.includes("but it cannot run"));
    expect(json(update!)).toMatch(/Approved by <@UADMIN>, <@UADMIN2>.*but it cannot run/);
    await dmsTo("ULATE", (t) => /quota/i.test(t) && t.includes("1 of 1"));
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await inventory(sys)).has("twokey-late")).toBe(false);
  });
});
