import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Subjects } from "@iaas/contracts";
import { QuotaEntrySchema, encodeJson, jetstreamFor, openBucket, quotaKey, type KV } from "@iaas/runtime";
import { waitUntil } from "@iaas/testkit";
import { startSystem, type System } from "./harness.js";
import { actor, click, finalPost, idOf, inventory, natsId, now, postsMatching, publishCommand, rawClone, textOf } from "./helpers.js";

/**
 * Quotas hold under concurrency: requests are checked and reserved by compare-and-set in the
 * `iaas_quotas` bucket, which every gateway replica and vm-lifecycle share, so requests that race
 * each other for the last share never all get it, whichever replica or path they come by.
 */
const POLICY = `
roles:
  viewer: [help, list, info, templates, sizes, quota]
  builder: [create, clone, deploy, delete]
  admin: ["*"]
bindings:
  - { role: viewer, everyone: true }
  - { role: builder, everyone: true }
sizes:
  small: { cpu: 1, memoryGB: 2, diskGB: 16 }
defaultSize: small
limits: { maxCpu: 8, maxMemoryGB: 32, maxDiskGB: 200 }
teams:
  platform: { users: [UT1, UT2] }
quotas:
  perUser: { vms: 10 }
  teams:
    platform: { vms: 2 }
  users:
    URACE: { vms: 2 }
    UFAIL: { vms: 1 }
    UNATS: { vms: 1 }
    UAGAIN: { vms: 1 }
rateLimit: { perUserPerMinute: 10000 }
`;

describe("quotas under concurrency", () => {
  let sys: System;
  let nc: NatsConnection;
  let kv: KV;
  beforeAll(async () => {
    sys = await startSystem({ policyYaml: POLICY, gatewayReplicas: 2 });
    nc = await connect({ servers: sys.nats.url });
    kv = await openBucket(nc, "quotas");
  });
  afterAll(async () => {
    await nc?.close();
    await sys?.stop();
  });

  const ownedBy = async (prefix: string) => [...(await inventory(sys)).keys()].filter((n) => n.startsWith(prefix));
  const reservationsOf = async (userId: string) => {
    const e = await kv.get(quotaKey.user(userId));
    return e && e.length ? Object.keys(QuotaEntrySchema.parse(e.json()).reservations) : [];
  };

  it("8 concurrent creates by one user with a quota of 2, through two gateway replicas: exactly 2 VMs; the others refused in the ack with the figures", async () => {
    const names = Array.from({ length: 8 }, (_, i) => `race-${i}`);
    const acks = await Promise.all(names.map((name, i) => sys.slash(`create ${name}`, { user_id: "URACE", via: i % 2 })));
    const accepted = acks.filter((r) => textOf(r.json).startsWith("Creating"));
    const refused = acks.filter((r) => !textOf(r.json).startsWith("Creating"));
    // What vCenter has first: every accepted create has finished (or failed) by then.
    const finals = await Promise.all(accepted.map((r) => finalPost(sys, r.responseUrl)));
    expect(await ownedBy("race-")).toHaveLength(2);
    expect(accepted).toHaveLength(2);
    for (const f of finals) expect(f).toMatch(/^:white_check_mark: Created `race-\d`/);
    expect(refused).toHaveLength(6);
    for (const r of refused) {
      expect(r.status).toBe(200);
      expect(textOf(r.json)).toMatch(/^:warning: Over your quota: you use 2 of 2 VMs; this needs 1 more VM\. .*\(request `r-[a-z2-7]{24}`\)$/);
    }
    // Both finished: their shares are given back (the VMs now count as existing).
    await waitUntil("URACE's reservations released", async () => (await reservationsOf("URACE")).length === 0);
    const again = await sys.slash("create race-late", { user_id: "URACE", via: 1 });
    expect(textOf(again.json)).toMatch(/^:warning: Over your quota: you use 2 of 2 VMs; this needs 1 more VM\./);
  });

  it("/iaas quota shows the use and the limits", async () => {
    const r = await sys.slash("quota", { user_id: "URACE" });
    expect(textOf(r.json)).toBe("Your quota: VMs 2 of 2, vCPU 2 of no limit, Memory (GB) 4 of no limit, Disk (GB) 32 of no limit");
  });

  it("a create that fails gives its share back", async () => {
    // Someone else's VM already has the name: the proxy refuses the duplicate after the share was reserved.
    await rawClone(sys, "taken-name");
    const failed = await sys.slash("create taken-name", { user_id: "UFAIL" });
    expect(textOf(failed.json)).toMatch(/^Creating `taken-name`/);
    expect(await finalPost(sys, failed.responseUrl)).toMatch(/^:x: /);
    await waitUntil("UFAIL's reservation released", async () => (await reservationsOf("UFAIL")).length === 0);
    // The quota of 1 is free again: had the failed create kept its share, this would be refused.
    const ok = await sys.slash("create fail-then-ok", { user_id: "UFAIL", via: 1 });
    expect(textOf(ok.json)).toMatch(/^Creating `fail-then-ok`/);
    expect(await finalPost(sys, ok.responseUrl)).toMatch(/^:white_check_mark: Created `fail-then-ok`/);
  });

  it("commands published straight on NATS race the same way: vm-lifecycle reserves them", async () => {
    const cmds = Array.from({ length: 4 }, (_, i) => ({ id: natsId("q"), issuedAt: now(), area: "vm" as const, action: "create" as const, name: `nats-race-${i}`, actor: actor("UNATS") }));
    const results = await Promise.all(cmds.map((c) => publishCommand(sys, c)));
    expect(await ownedBy("nats-race-")).toHaveLength(1);
    expect(results.filter((r) => r.status === "succeeded")).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== "succeeded")) expect(r).toMatchObject({ status: "failed", error: { code: "IAAS_QUOTA_EXCEEDED" } });
  });

  it("a team's quota holds across its members: 4 creates at once for the team by two members, quota 2 → 2 VMs", async () => {
    const cmds = ["UT1", "UT2", "UT1", "UT2"].map((u, i) => ({ id: natsId("t"), issuedAt: now(), area: "vm" as const, action: "create" as const, name: `team-race-${i}`, team: "platform", actor: actor(u) }));
    const results = await Promise.all(cmds.map((c) => publishCommand(sys, c)));
    expect(await ownedBy("team-race-")).toHaveLength(2);
    for (const r of results.filter((x) => x.status !== "succeeded")) {
      expect(r).toMatchObject({ status: "failed", error: { code: "IAAS_QUOTA_EXCEEDED" } });
      expect(r.status === "failed" && r.error.message).toMatch(/^Over the quota of team `platform`: it uses 2 of 2 VMs; this needs 1 more VM\./);
    }
    const q = await sys.slash("quota", { user_id: "UT2" });
    expect(textOf(q.json)).toMatch(/\nQuota of team platform: VMs 2 of 2, /);
  });

  it("a create delivered again after its VM was made and its share given back is not refused for its own VM", async () => {
    // The window between vm-lifecycle releasing the share (the proxy answered) and recording the
    // command as done: a crash there brings the command back, with its VM counted as existing.
    const cmd = { id: natsId("again"), issuedAt: now(), area: "vm" as const, action: "create" as const, name: "again-1", actor: actor("UAGAIN") };
    expect(await publishCommand(sys, cmd)).toMatchObject({ status: "succeeded" });
    const state = await openBucket(nc, "commandState");
    await state.delete(cmd.id);
    const { js } = await jetstreamFor(nc);
    // Another message id: JetStream would drop the same one as a duplicate.
    await js.publish(Subjects.command("vm", "create"), encodeJson(cmd), { msgID: `${cmd.id}-redelivered` });
    const done = await waitUntil("the command handled again", async () => {
      const e = await state.get(cmd.id);
      const v = e && e.length ? (e.json() as { status: string; result?: { status: string; error?: { code: string } } }) : undefined;
      return v?.status === "done" ? v.result : undefined;
    });
    expect(done).toMatchObject({ status: "succeeded" });
    expect(await ownedBy("again-")).toEqual(["again-1"]);
  });
});

describe("quotas on a confirmed create", () => {
  let sys: System;
  beforeAll(async () => {
    sys = await startSystem({ policyYaml: `${POLICY}confirm: [create]\n` });
  });
  afterAll(async () => {
    await sys?.stop();
  });

  it("the share is taken on Confirm; over quota, the prompt is replaced by the refusal with the figures", async () => {
    const ask = async (name: string) => {
      const r = await sys.slash(`create ${name}`, { user_id: "UFAIL" });
      expect(textOf(r.json)).toMatch(/^Run `\/iaas create /);
      return click(sys, { userId: "UFAIL", action: "confirm", value: idOf(r.json) });
    };
    // Both prompts are shown before either is confirmed: the check is made on the click.
    const [first, second] = [await sys.slash("create conf-1", { user_id: "UFAIL" }), await sys.slash("create conf-2", { user_id: "UFAIL" })];
    const c1 = await click(sys, { userId: "UFAIL", action: "confirm", value: idOf(first.json) });
    expect(await finalPost(sys, c1.responseUrl)).toMatch(/^:white_check_mark: Created `conf-1`/);
    const c2 = await click(sys, { userId: "UFAIL", action: "confirm", value: idOf(second.json) });
    const [refusal] = await postsMatching(sys, c2.responseUrl, (t) => t.startsWith(":warning:"));
    expect(textOf(refusal!.body)).toMatch(/^:warning: Over your quota: you use 1 of 1 VM; this needs 1 more VM\..*\(request `r-[a-z2-7]{24}`\)$/);
    expect((refusal!.body as { replace_original?: boolean }).replace_original).toBe(true);
    const c3 = await ask("conf-3");
    const [again] = await postsMatching(sys, c3.responseUrl, (t) => t.startsWith(":warning:"));
    expect(textOf(again!.body)).toMatch(/^:warning: Over your quota/);
    expect([...(await inventory(sys)).keys()].filter((n) => n.startsWith("conf-"))).toEqual(["conf-1"]);
  });
});
