import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApprovalRecordSchema, Streams, approvalIdFor, type ApprovalRecord, type Command } from "@iaas/contracts";
import { connectNats, createLogger, jetstreamFor, openBucket, type KV, type NatsConnection } from "@iaas/runtime";
import { startNatsServer, type NatsServer } from "@iaas/testkit";
import { ApprovalDesk } from "../src/listeners/approvals.js";
import { ApprovalStore } from "../src/stores/approvals.js";
import { Auditor } from "../src/stores/audit.js";
import { QuotaGate } from "../src/stores/quotas.js";
import { RequestStore } from "../src/stores/requests.js";
import type { SlackApi } from "../src/transport/slack.js";
import { ensureGatewayResources } from "../src/mod.js";
import { testPolicy } from "./harness.js";

const HOUR = 60 * 60_000;

/**
 * A gateway that died right after settling a request (the compare-and-set to rejected or expired
 * landed; the audit, the requester's word and the marks did not): the record is put in the bucket
 * as that replica left it, and two replicas' sweeps are run at once, then again. The audit is
 * stored once, the requester told once, whatever the number of sweeps. Slack is a recorder.
 */
describe("approvals: a settled request its replica did not finish", () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let kv: KV;
  const dms: { channel: string; text: string }[] = [];
  const desks: ApprovalDesk[] = [];
  const log = createLogger("approvals-settle-test", process.env.TEST_LOG_LEVEL ?? "silent");

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connectNats({ NATS_URL: nats.url } as Parameters<typeof connectNats>[0], "gateway", log);
    await ensureGatewayResources(nc, log);
    kv = await openBucket(nc, "approvals");
    const { js, jsm } = await jetstreamFor(nc);
    const policy = testPolicy({}, "UADMIN,UADMIN2");
    const api: SlackApi = {
      postMessage: async (channel, text) => {
        dms.push({ channel, text });
        return { channel, ts: `${Date.now()}.${dms.length}` };
      },
      update: async () => undefined,
      viewsOpen: async () => ({ viewId: "V1" }),
      viewsUpdate: async () => undefined,
      viewsPublish: async () => undefined,
    };
    // Two replicas: each its own stores and auditor over the same buckets and streams.
    for (let i = 0; i < 2; i++) {
      desks.push(
        new ApprovalDesk({
          store: new ApprovalStore(kv, log),
          requests: new RequestStore(await openBucket(nc, "requests"), log),
          js,
          nc,
          quotas: new QuotaGate({ kv: await openBucket(nc, "quotas"), nc, policy, log }),
          auditor: new Auditor({ js, jsm, log, now: Date.now }),
          policy,
          api,
          channel: "CAPPROVE1",
          groups: { groupsOf: () => undefined },
          allowed: () => true,
          log,
          now: Date.now,
        }),
      );
    }
  });
  afterAll(async () => {
    await nc?.drain();
    await nats?.stop();
  });

  /** Every audit record in IAAS_AUDIT about request `commandId` (command records) or its approval. */
  const auditsOf = async (commandId: string) => {
    const { jsm } = await jetstreamFor(nc);
    const info = await jsm.streams.info(Streams.audit.name);
    const out: Record<string, unknown>[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(Streams.audit.name, { seq }).catch(() => null);
      const r = m?.json<Record<string, unknown>>();
      if (r && (r.id === commandId || r.request === commandId)) out.push(r);
    }
    return out;
  };

  /** A request settled an hour ago, as a replica leaves it when it dies right after the compare-and-set. */
  const settled = async (state: "rejected" | "expired" | "approved", vm: string, reason?: string, more: Partial<ApprovalRecord> = {}): Promise<ApprovalRecord> => {
    const commandId = `r-${vm.replace(/[^a-z]/g, "").padEnd(24, "a").slice(0, 24)}`;
    const created = Date.now() - 25 * HOUR;
    const command = { area: "vm", action: "create", id: commandId, actor: { userId: "UALICE", teamId: "T0001", via: "slack" }, issuedAt: new Date(created).toISOString(), name: vm, size: "xlarge" } as Command;
    const id = approvalIdFor(commandId);
    const rec: ApprovalRecord = ApprovalRecordSchema.parse({
      id,
      state,
      command: { ...command, approvalId: id },
      verb: "vm.create",
      vm,
      summary: `Create \`${vm}\` (xlarge)`,
      requester: "UALICE",
      teamId: "T0001",
      channelId: "CWORK0001",
      text: `create ${vm} xlarge`,
      rule: "big-sizes",
      why: "size `xlarge` needs an approval",
      approvers: "<@UADMIN>, <@UADMIN2>",
      minApprovals: 1,
      decisions:
        state === "expired" ? [] : [{ userId: "UADMIN2", decision: state === "rejected" ? "reject" : "approve", at: new Date(Date.now() - HOUR).toISOString(), ...(reason ? { reason } : {}) }],
      createdAt: new Date(created).toISOString(),
      expiresAt: new Date(created + 24 * HOUR).toISOString(),
      remindAt: new Date(created + 12 * HOUR).toISOString(),
      reminded: true,
      decidedAt: new Date(Date.now() - HOUR).toISOString(),
      ...more,
    });
    await kv.put(rec.id, JSON.stringify(rec));
    return rec;
  };
  const sweepBoth = () => Promise.all(desks.map((d) => d.sweep()));
  const dmsAbout = (vm: string) => dms.filter((d) => d.channel === "UALICE" && d.text.includes(vm));
  const stored = async (id: string) => ApprovalRecordSchema.parse((await kv.get(id))!.json());

  it("a rejection: the sweep stores its audit (with the reason) and tells the requester, once, on two replicas and a second pass", async () => {
    const rec = await settled("rejected", "big-rej", "ask for large");
    await sweepBoth();
    const first = await auditsOf(rec.command.id);
    const approval = first.filter((r) => r.kind === "approval");
    expect(approval).toHaveLength(1);
    expect(approval[0]).toMatchObject({ id: rec.id, decision: "rejected", by: "UADMIN2", reason: "ask for large", at: rec.decidedAt });
    const command = first.filter((r) => r.kind === "command");
    expect(command).toHaveLength(1);
    expect(command[0]).toMatchObject({ outcome: "rejected", code: "IAAS_NOT_ALLOWED" });
    expect(String(command[0]!.message)).toContain("ask for large");
    expect(dmsAbout("big-rej")).toHaveLength(1);
    expect(dmsAbout("big-rej")[0]!.text).toMatch(/was rejected by <@UADMIN2>.*\n?.*Reason:\* ask for large/s);
    expect(await stored(rec.id)).toMatchObject({ audited: true, told: true });
    expect((await stored(rec.id)).tellingUntil).toBeUndefined();

    await sweepBoth();
    expect(await auditsOf(rec.command.id)).toHaveLength(2);
    expect(dmsAbout("big-rej")).toHaveLength(1);
  });

  it("an expiry: the same, and the audit stored by a replica that died before marking it is not stored twice", async () => {
    const rec = await settled("expired", "big-exp");
    // This replica stored the audit and died before the mark: the record still says not audited.
    await desks[0]!.auditSettled({ record: rec, revision: 0 }, log);
    await kv.put(rec.id, JSON.stringify(rec));
    expect(await auditsOf(rec.command.id)).toHaveLength(2);
    await sweepBoth();
    const all = await auditsOf(rec.command.id);
    expect(all.map((r) => `${String(r.kind)}:${String(r.decision ?? r.outcome)}`).sort()).toEqual(["approval:expired", "command:rejected"]);
    expect(dmsAbout("big-exp")).toHaveLength(1);
    expect(dmsAbout("big-exp")[0]!.text).toMatch(/expired: nobody decided it in time/);
    await sweepBoth();
    expect(await auditsOf(rec.command.id)).toHaveLength(2);
    expect(dmsAbout("big-exp")).toHaveLength(1);
    expect(await stored(rec.id)).toMatchObject({ audited: true, told: true });
  });

  it("a requester told but not marked (the replica died after the DM) is told again by the sweep once its claim lapsed, not while it holds", async () => {
    const rec = await settled("rejected", "big-tel");
    // A live replica holds the claim: the sweeps leave the requester to it.
    await kv.put(rec.id, JSON.stringify({ ...rec, audited: true, tellingUntil: new Date(Date.now() + HOUR).toISOString() }));
    await sweepBoth();
    expect(dmsAbout("big-tel")).toHaveLength(0);
    // It died: its claim lapses, a sweep tells, once.
    await kv.put(rec.id, JSON.stringify({ ...rec, audited: true, tellingUntil: new Date(Date.now() - 1).toISOString() }));
    await sweepBoth();
    expect(dmsAbout("big-tel")).toHaveLength(1);
    await sweepBoth();
    expect(dmsAbout("big-tel")).toHaveLength(1);
  });

  it("an approved command published by a replica that died before the DM: the requester is told once, of a refusal too", async () => {
    const ran = await settled("approved", "big-ran", undefined, { audited: true, published: true });
    const refused = await settled("approved", "big-ref", undefined, {
      audited: true,
      published: true,
      refused: { code: "IAAS_QUOTA_EXCEEDED", message: "You have reached your quota of 2 VMs.", retryable: false },
    });
    await sweepBoth();
    await sweepBoth();
    expect(dmsAbout("big-ran")).toHaveLength(1);
    expect(dmsAbout("big-ran")[0]!.text).toMatch(/was approved by <@UADMIN2>; it runs now/);
    const told = dms.filter((d) => d.channel === "UALICE" && d.text.includes(refused.command.id));
    expect(told).toHaveLength(1);
    expect(told[0]!.text).toContain("You have reached your quota of 2 VMs.");
    expect(await stored(ran.id)).toMatchObject({ told: true });
    // Nothing else: neither command published again, nor audited again (both were).
    const { jsm } = await jetstreamFor(nc);
    expect((await jsm.streams.info(Streams.commands.name)).state.messages).toBe(0);
    expect(await auditsOf(ran.command.id)).toHaveLength(0);
  });
});
