import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { ProxyEndpoints, Streams } from "@iaas/contracts";
import { createLogger, jetstreamFor, openBucket, requestJson } from "@iaas/runtime";
import { SnapshotSweeper } from "@iaas/vm-lifecycle";
import { postSigned, waitUntil } from "@iaas/testkit";
import { listVmSummaries, type VimClient } from "@iaas/vsphere";
import { stringify } from "yaml";
import { DEFAULT_POLICY } from "@iaas/policy";
import { SIGNING_SECRET, startSystem, type System } from "./harness.js";
import { actor, buttonsOf, click, finalPost, idOf, natsId, now, publishCommand, textOf, waitFor } from "./helpers.js";

/**
 * Two vCenters behind one proxy (the second as VCENTERS id `vc-b`, the gateway told the same):
 * both simulators have the same generated inventory, so every VM name is in both. `vc=` picks
 * the vCenter a command acts in; without it, the default one, as with a single vCenter. The
 * default policy, but U0003 may have only 2 VMs (in all vCenters together), no rate limit to
 * speak of (one user sends many commands here), and a placement and limits per vCenter.
 */
const POLICY = stringify({
  ...structuredClone(DEFAULT_POLICY),
  // Per vCenter: B puts new VMs on the standalone host DC0_H0 (the top-level placement: cluster
  // DC0_C0), and the default vCenter allows at most 2 vCPU (the top-level limits: 8).
  vcenters: { "vc-b": { placement: { datacenter: "DC0", resourcePool: "/DC0/host/DC0_H0/Resources", folder: "/DC0/vm" } }, default: { limits: { maxCpu: 2 } } },
  quotas: { ...structuredClone(DEFAULT_POLICY.quotas), users: { U0003: { vms: 2 } } },
  rateLimit: { ...structuredClone(DEFAULT_POLICY.rateLimit), perUserPerMinute: 10_000 },
});

describe("/iaas with two vCenters (vc=)", () => {
  let sys: System;
  const B = "vc-b";
  beforeAll(async () => {
    sys = await startSystem({ secondVcenter: B, policyYaml: POLICY });
    // Unowned VMs are admin-only. In A the VMs are U0001's; in B, DC0_H0_VM1 is U0002's.
    for (const vm of ["DC0_H0_VM0", "DC0_H0_VM1", "DC0_C0_RP0_VM0"]) {
      await requestJson(sys.nc, ProxyEndpoints.vmSetOwner, { vm, owner: "U0001" }, { timeoutMs: 10_000 });
    }
    for (const [vm, owner] of [["DC0_H0_VM0", "U0001"], ["DC0_H0_VM1", "U0002"], ["DC0_C0_RP0_VM0", "U0001"]] as const) {
      await requestJson(sys.nc, ProxyEndpoints.vmSetOwner, { vcenter: B, vm, owner }, { timeoutMs: 10_000 });
    }
    // U0003 has one VM in each vCenter: 2 in all, their quota.
    await requestJson(sys.nc, ProxyEndpoints.vmSetOwner, { vm: "DC0_C0_RP0_VM1", owner: "U0003" }, { timeoutMs: 10_000 });
    await requestJson(sys.nc, ProxyEndpoints.vmSetOwner, { vcenter: B, vm: "DC0_C0_RP0_VM1", owner: "U0003" }, { timeoutMs: 10_000 });
  });
  afterAll(async () => {
    await sys?.stop();
  });

  const stateIn = async (c: VimClient, name: string) => (await listVmSummaries(c)).find((v) => v.name === name)?.powerState;
  const inA = (name: string) => stateIn(sys.observer, name);
  const inB = (name: string) => stateIn(sys.observerB!, name);
  const commandsInStream = async () => (await (await jetstreamManager(sys.nc)).streams.info(Streams.commands.name)).state.messages;

  it("power off <vm> vc=vc-b powers off B's VM only; the command carries the vCenter", async () => {
    expect(await inA("DC0_H0_VM0")).toBe("poweredOn");
    expect(await inB("DC0_H0_VM0")).toBe("poweredOn");
    const r = await sys.slash(`power off DC0_H0_VM0 vc=${B}`);
    expect(r.status).toBe(200);
    expect(textOf(r.json)).toMatch(/^Powering off `DC0_H0_VM0` in vCenter `vc-b`… \(request `r-[a-z2-7]{24}`\)$/);
    const id = idOf(r.json);
    expect(await finalPost(sys, r.responseUrl)).toContain(":white_check_mark: `DC0_H0_VM0` is powered off");
    expect(await inB("DC0_H0_VM0")).toBe("poweredOff");
    expect(await inA("DC0_H0_VM0")).toBe("poweredOn");
    const jsm = await jetstreamManager(sys.nc);
    const cmd = await jsm.streams.getMessage(Streams.commands.name, { last_by_subj: "iaas.cmd.power.off" });
    expect(cmd!.json()).toMatchObject({ id, vm: "DC0_H0_VM0", vcenter: B });
    const res = await jsm.streams.getMessage(Streams.results.name, { last_by_subj: `iaas.result.${id}` });
    expect(res!.json()).toMatchObject({ status: "succeeded", facts: { code: "done", vm: "DC0_H0_VM0", vcenter: B } });
  });

  it("without vc= the default vCenter is the one acted in, as with one vCenter", async () => {
    const r = await sys.slash("power off DC0_C0_RP0_VM0");
    expect(textOf(r.json)).toMatch(/^Powering off `DC0_C0_RP0_VM0`… \(request /);
    expect(await finalPost(sys, r.responseUrl)).toContain(":white_check_mark: `DC0_C0_RP0_VM0` is powered off");
    expect(await inA("DC0_C0_RP0_VM0")).toBe("poweredOff");
    expect(await inB("DC0_C0_RP0_VM0")).toBe("poweredOn");
  });

  it("info vc=vc-b shows B's VM (and says so); info without it A's", async () => {
    const b = await sys.slash(`info DC0_H0_VM0 vc=${B}`);
    expect(textOf(b.json)).toMatch(/^DC0_H0_VM0: powered off, .*, vCenter vc-b$/);
    // Its buttons act in B too.
    expect(JSON.stringify(b.json)).toContain(`power on DC0_H0_VM0 vc=${B}`);
    const a = await sys.slash("info DC0_H0_VM0");
    expect(textOf(a.json)).toMatch(/^DC0_H0_VM0: powered on, /);
    expect(textOf(a.json)).not.toContain("vCenter");
  });

  it("the owner is checked on the VM in the vCenter named: B's DC0_H0_VM1 is U0002's, A's is U0001's", async () => {
    const before = await commandsInStream();
    const refused = await sys.slash(`power off DC0_H0_VM1 vc=${B}`);
    expect(textOf(refused.json)).toMatch(/^:warning: /);
    expect(textOf(refused.json)).toContain("DC0_H0_VM1");
    expect(await commandsInStream()).toBe(before);
    expect(await inB("DC0_H0_VM1")).toBe("poweredOn");
    // U0002 may: it is theirs in B (and A's, of the same name, is left alone).
    const theirs = await sys.slash(`power off DC0_H0_VM1 vc=${B}`, { user_id: "U0002" });
    expect(await finalPost(sys, theirs.responseUrl)).toContain(":white_check_mark: `DC0_H0_VM1` is powered off");
    expect(await inB("DC0_H0_VM1")).toBe("poweredOff");
    expect(await inA("DC0_H0_VM1")).toBe("poweredOn");
  });

  it("list marks each VM's vCenter; list vc=vc-b lists B's only", async () => {
    const names = (text: string) => text.split("\n").slice(1).map((l) => l.slice(0, l.indexOf(":")));
    const all = textOf((await sys.slash("list")).json);
    expect(all).toMatch(/^5 of your VMs:\n/);
    // By name, then A before B; B's DC0_H0_VM1 is U0002's, so not in U0001's list.
    expect(names(all)).toEqual(["DC0_C0_RP0_VM0 (vc=default)", "DC0_C0_RP0_VM0 (vc=vc-b)", "DC0_H0_VM0 (vc=default)", "DC0_H0_VM0 (vc=vc-b)", "DC0_H0_VM1 (vc=default)"]);
    const onlyB = textOf((await sys.slash(`list vc=${B}`)).json);
    expect(onlyB).toMatch(/^2 of your VMs:\n/);
    expect(names(onlyB)).toEqual(["DC0_C0_RP0_VM0 (vc=vc-b)", "DC0_H0_VM0 (vc=vc-b)"]);
    const onlyA = textOf((await sys.slash("list vc=default DC0_H0*")).json);
    expect(names(onlyA)).toEqual(["DC0_H0_VM0 (vc=default)", "DC0_H0_VM1 (vc=default)"]);
  });

  it("delete vc=vc-b confirms and deletes B's VM only", async () => {
    const r = await sys.slash(`delete DC0_C0_RP0_VM0 vc=${B}`);
    expect(textOf(r.json)).toMatch(/^Delete `DC0_C0_RP0_VM0` in vCenter `vc-b`\? This cannot be undone\./);
    const id = idOf(r.json);
    expect(buttonsOf(r.json)[0]).toMatchObject({ actionId: "iaas.confirm", value: id });
    const mine = await click(sys, { userId: "U0001", action: "confirm", value: id });
    expect(await finalPost(sys, mine.responseUrl)).toContain(":white_check_mark: Deleted `DC0_C0_RP0_VM0`.");
    expect(await inB("DC0_C0_RP0_VM0")).toBeUndefined();
    expect(await inA("DC0_C0_RP0_VM0")).toBe("poweredOff");
  });

  it("vc=nope is refused with IAAS_UNKNOWN_VCENTER naming the vCenters; nothing is published", async () => {
    const before = await commandsInStream();
    for (const text of ["power off DC0_H0_VM1 vc=nope", "delete DC0_H0_VM1 vc=nope", "info DC0_H0_VM1 vc=nope", "list vc=nope"]) {
      const r = await sys.slash(text);
      expect(r.status).toBe(200);
      expect(textOf(r.json), text).toMatch(/^:warning: There is no vCenter `nope`; nothing was done\. The vCenters are `default`, `vc-b`; leave `vc=` out for `default`\. \(request `r-/);
    }
    // A barrier: a later request's answer proves the refusals were handled before it.
    await sys.slash("sizes");
    expect(await commandsInStream()).toBe(before);
    expect(await inA("DC0_H0_VM1")).toBe("poweredOn");
  });

  it("snapshot create vc=vc-b snapshots B's VM only; snapshot list vc=vc-b shows it", async () => {
    const r = await sys.slash(`snapshot create DC0_H0_VM0 pre-b vc=${B}`);
    expect(textOf(r.json)).toMatch(/^Taking a snapshot `pre-b` of `DC0_H0_VM0` in vCenter `vc-b`…/);
    expect(await finalPost(sys, r.responseUrl)).toContain(":white_check_mark: Took the snapshot `pre-b` of `DC0_H0_VM0`");
    const snaps = async (vcenter?: string) => (await requestJson(sys.nc, ProxyEndpoints.snapshotList, { vm: "DC0_H0_VM0", ...(vcenter ? { vcenter } : {}) }, { timeoutMs: 10_000 })).snapshots.map((x) => x.name);
    expect(await snaps(B)).toEqual(["pre-b"]);
    expect(await snaps()).toEqual([]);
    expect(textOf((await sys.slash(`snapshot list DC0_H0_VM0 vc=${B}`)).json)).toContain("pre-b");
    expect(textOf((await sys.slash("snapshot list DC0_H0_VM0")).json)).not.toContain("pre-b");
  });

  it("create vc=vc-b makes the VM in B only, and the result names B", async () => {
    const r = await sys.slash(`create mvc-01 vc=${B}`);
    expect(textOf(r.json)).toMatch(/^Creating `mvc-01` in vCenter `vc-b`/);
    const id = idOf(r.json);
    expect(await finalPost(sys, r.responseUrl)).toContain(":white_check_mark: Created `mvc-01`");
    expect(await inB("mvc-01")).toBeDefined();
    expect(await inA("mvc-01")).toBeUndefined();
    const res = await (await jetstreamManager(sys.nc)).streams.getMessage(Streams.results.name, { last_by_subj: `iaas.result.${id}` });
    expect(res!.json()).toMatchObject({ status: "succeeded", facts: { vm: "mvc-01", vcenter: B, owner: "U0001" } });
  });

  it("placement and limits per vCenter (policy vcenters): B's new VM on B's host; the default vCenter's smaller limits refuse a large size and a resize past them", async () => {
    const { vm } = await requestJson(sys.nc, ProxyEndpoints.vmInfo, { vcenter: B, vm: "mvc-01" }, { timeoutMs: 10_000 });
    expect(vm.host).toBe("DC0_H0");
    const before = await commandsInStream();
    const large = textOf((await sys.slash("create big-a large")).json);
    expect(large).toContain("Size `large` is more than the policy allows in vCenter `default`: 4 vCPU (at most 2)");
    const resize = textOf((await sys.slash("resize DC0_H0_VM0 cpu=3")).json);
    expect(resize).toContain("`cpu=3` is more than the policy allows in vCenter `default`: at most 2 vCPU.");
    expect(await commandsInStream()).toBe(before);
    // The same size is within B's limits (the top-level ones): it goes ahead there.
    expect(textOf((await sys.slash(`create big-b2 large vc=${B}`)).json)).toMatch(/^Creating `big-b2` in vCenter `vc-b`/);
  });

  it("quotas count the VMs of every vCenter: U0003's one in A and one in B fill their quota of 2", async () => {
    const q = textOf((await sys.slash("quota", { user_id: "U0003" })).json);
    expect(q).toMatch(/^Your quota: VMs 2 of 2, vCPU 2 of 20,/);
    const before = await commandsInStream();
    for (const text of ["create q3-01", `create q3-01 vc=${B}`]) {
      const r = await sys.slash(text, { user_id: "U0003" });
      expect(textOf(r.json), text).toMatch(/^:warning: .*quota/i);
    }
    expect(await commandsInStream()).toBe(before);
    expect(await inA("q3-01")).toBeUndefined();
    expect(await inB("q3-01")).toBeUndefined();
  });

  it("resize, clone, lease, extend and owner with vc=vc-b act on B's VMs; the result's facts name B", async () => {
    const cpuIn = async (c: VimClient, name: string) => (await listVmSummaries(c)).find((v) => v.name === name)?.numCPU;
    const resized = await sys.slash(`resize DC0_H0_VM0 cpu=2 vc=${B}`);
    expect(textOf(resized.json)).toMatch(/^Resizing `DC0_H0_VM0` in vCenter `vc-b` to 2 vCPU…/);
    const [post] = await sys.slack.waitFor(() => {
      const p = sys.slack.postsTo(resized.responseUrl).filter((c) => textOf(c.body).startsWith(":white_check_mark:"));
      return p.length > 0 && p;
    }, 30_000);
    expect(textOf(post!.body)).toContain("Resized `DC0_H0_VM0`");
    // The result's facts line names the vCenter.
    expect(JSON.stringify(post!.body)).toContain("vCenter `vc-b`");
    expect(await cpuIn(sys.observerB!, "DC0_H0_VM0")).toBe(2);
    expect(await cpuIn(sys.observer, "DC0_H0_VM0")).toBe(1);

    const cloned = await sys.slash(`clone DC0_H0_VM0 mvc-02 vc=${B}`);
    expect(await finalPost(sys, cloned.responseUrl)).toContain(":white_check_mark: Cloned `DC0_H0_VM0` to `mvc-02`");
    expect(await cpuIn(sys.observerB!, "mvc-02")).toBe(2);
    expect(await inA("mvc-02")).toBeUndefined();

    // mvc-01 was made in B: A has no VM of that name.
    expect(textOf((await sys.slash("lease mvc-01")).json)).toMatch(/^:warning: No VM named `mvc-01`/);
    expect(textOf((await sys.slash(`lease mvc-01 vc=${B}`)).json)).toMatch(/^mvc-01: lease ends in /);
    const extended = await sys.slash(`extend mvc-01 90d vc=${B}`);
    expect(textOf(extended.json)).toMatch(/^Extending the lease of `mvc-01` in vCenter `vc-b` to 90 days from now…/);
    expect(await finalPost(sys, extended.responseUrl)).toContain(":white_check_mark: The lease of `mvc-01` now ends");
    const leaseOf = async () => (await requestJson(sys.nc, ProxyEndpoints.vmGet, { vcenter: B, vm: "mvc-01" }, { timeoutMs: 10_000 })).vm.leaseExpires;
    expect(Date.parse((await leaseOf())!) - Date.now()).toBeGreaterThan(89 * 86_400_000);

    const given = await sys.slash(`owner mvc-02 <@U0002> vc=${B}`);
    expect(textOf(given.json)).toMatch(/^Giving `mvc-02` in vCenter `vc-b` to <@U0002>…/);
    expect(await finalPost(sys, given.responseUrl)).toContain(":white_check_mark: `mvc-02` now belongs to <@U0002>");
    expect((await requestJson(sys.nc, ProxyEndpoints.vmGet, { vcenter: B, vm: "mvc-02" }, { timeoutMs: 10_000 })).vm.owner).toBe("U0002");
  });

  it("a command published on NATS with vcenter is checked and run against that vCenter's VM", async () => {
    // DC0_H0_VM1 is U0001's in A but U0002's in B: U0001's power-off in B is refused, A's VM untouched.
    const refused = await publishCommand(sys, { id: natsId("mvc-off"), actor: actor("U0001"), issuedAt: now(), area: "power", action: "off", vm: "DC0_H0_VM1", vcenter: B });
    expect(refused).toMatchObject({ status: "failed", error: { code: "IAAS_NOT_ALLOWED" } });
    expect(await inA("DC0_H0_VM1")).toBe("poweredOn");
    const ok = await publishCommand(sys, { id: natsId("mvc-on"), actor: actor("U0002"), issuedAt: now(), area: "power", action: "on", vm: "DC0_H0_VM1", vcenter: B });
    expect(ok).toMatchObject({ status: "succeeded", facts: { code: "done", vm: "DC0_H0_VM1", vcenter: B } });
    expect(await inB("DC0_H0_VM1")).toBe("poweredOn");
    // The audit record names the vCenter too.
    const jsm = await jetstreamManager(sys.nc);
    const audit = await waitFor(async () => {
      const m = await jsm.streams.getMessage(Streams.audit.name, { last_by_subj: "iaas.audit.command" }).catch(() => null);
      const rec = m?.json<{ id: string; vcenter?: string }>();
      return rec?.id === ok.id ? rec : undefined;
    }, 30_000);
    expect(audit).toMatchObject({ command: "power.on", vm: "DC0_H0_VM1", vcenter: B, outcome: "succeeded" });
  });

  it("a command that waits for an approval runs, once approved, in the vCenter it named", async () => {
    const r = await sys.slash(`create big-b xlarge vc=${B}`);
    expect(textOf(r.json)).toMatch(/needs an approval/);
    const id = idOf(r.json);
    const jsm = await jetstreamManager(sys.nc);
    await click(sys, { userId: "UADMIN1", action: "iaas.approval.approve", value: `ap-${id}` });
    await waitFor(async () => (await inB("big-b")) !== undefined);
    expect(await inA("big-b")).toBeUndefined();
    const cmd = await jsm.streams.getMessage(Streams.commands.name, { last_by_subj: "iaas.cmd.vm.create" });
    expect(cmd!.json()).toMatchObject({ id, name: "big-b", size: "xlarge", vcenter: B, approvalId: `ap-${id}` });
  });

  it("help names vc= and the vCenters when there are several", async () => {
    expect(textOf((await sys.slash("help")).json)).toContain("(`default`, `vc-b`)");
  });
});

/**
 * The default policy with leases in seconds (as leases.test.ts): default 14s, max 40s, a reminder
 * 10s before the end, a grace of 4s; and snapshots kept 1s (as snapshots.test.ts).
 */
function policyOfSeconds(): string {
  const yaml = readFileSync(new URL("../../deploy/policy.example.yaml", import.meta.url), "utf8");
  const out = yaml
    .replace(/perUserPerMinute: \d+/, "perUserPerMinute: 10000")
    .replace(/  default: 30d\n  max: 90d\n  grace: 7d\n  remindBefore: \[3d, 1d\]/, "  default: 14s\n  max: 40s\n  grace: 4s\n  remindBefore: [10s]")
    .replace(/snapshots:\n  maxPerVm: 3\n  maxAge: 7d/, "snapshots:\n  maxPerVm: 3\n  maxAge: 1s");
  if (!out.includes("remindBefore: [10s]") || !out.includes("maxAge: 1s")) throw new Error("deploy/policy.example.yaml's leases or snapshots are not the ones this test rewrites");
  return out;
}

describe("leases and the snapshot sweep with two vCenters: B's are kept and swept too", () => {
  let sys: System;
  const B = "vc-b";
  beforeAll(async () => {
    sys = await startSystem({ secondVcenter: B, policyYaml: policyOfSeconds(), gatewayEnv: { SLACK_BOT_TOKEN: "e2e-bot-token-not-real", SLACK_NOTIFY_CHANNEL: "CNOTIFY1" }, leaseScanMs: 300 });
  });
  afterAll(async () => {
    await sys?.stop();
  });

  const names = async (c: VimClient) => (await listVmSummaries(c)).map((v) => v.name);

  it("a VM of B with a lease is reminded (buttons with vc=vc-b), then deleted after the grace; A's VM of the same name is left", async () => {
    // A's lease-b lives longer (lease=40s, the max) than B's (the default 14s).
    for (const text of ["create lease-b small lease=40s", `create lease-b small vc=${B}`]) {
      const r = await sys.slash(text, { user_id: "UALICE" });
      expect(await finalPost(sys, r.responseUrl), text).toMatch(/Its lease ends/);
    }
    const reminder = await sys.slack.waitFor(() => sys.slack.apiCalls("chat.postMessage").find((c) => c.body.channel === "UALICE" && /lease of `lease-b` in vCenter `vc-b` ends in/.test(String(c.body.text))), 60_000);
    expect(buttonsOf({ blocks: JSON.parse(String(reminder.body.blocks)) }).map((b) => b.value)).toEqual([`extend lease-b vc=${B}`, `delete lease-b vc=${B}`]);
    await waitFor(async () => !(await names(sys.observerB!)).includes("lease-b"), 60_000);
    expect(await names(sys.observer)).toContain("lease-b");
    // The owner is told after the delete, naming the vCenter.
    await sys.slack.waitFor(() => sys.slack.apiCalls("chat.postMessage").find((c) => c.body.channel === "UALICE" && /`lease-b` in vCenter `vc-b` was deleted/.test(String(c.body.text))), 30_000);
  });

  it("the snapshot sweep deletes old iaas snapshots in both vCenters, and tells the owner which vCenter", async () => {
    await requestJson(sys.nc, ProxyEndpoints.vmSetOwner, { vm: "DC0_H0_VM0", owner: "UALICE" }, { timeoutMs: 10_000 });
    await requestJson(sys.nc, ProxyEndpoints.vmSetOwner, { vcenter: B, vm: "DC0_H0_VM0", owner: "UALICE" }, { timeoutMs: 10_000 });
    for (const text of ["snapshot create DC0_H0_VM0 old-a", `snapshot create DC0_H0_VM0 old-b vc=${B}`]) {
      const r = await sys.slash(text, { user_id: "UALICE" });
      expect(await finalPost(sys, r.responseUrl), text).toMatch(/^:white_check_mark: Took the snapshot/);
    }
    const snaps = async (vcenter?: string) => (await requestJson(sys.nc, ProxyEndpoints.snapshotList, { vm: "DC0_H0_VM0", ...(vcenter ? { vcenter } : {}) }, { timeoutMs: 10_000 })).snapshots;
    const [a, b] = [await snaps(), await snaps(B)];
    expect([a.map((x) => x.name), b.map((x) => x.name)]).toEqual([["old-a"], ["old-b"]]);
    // Older than maxAge (1 s) by vCenter's clock, which the sweep compares with.
    await waitUntil("the snapshots to be older than maxAge", async () => ([...(await snaps()), ...(await snaps(B))].every((x) => Date.now() - Date.parse(x.createdAt) > 1500) ? true : undefined), 10_000);
    const sweeper = new SnapshotSweeper({ nc: sys.nc, jet: await jetstreamFor(sys.nc), kv: await openBucket(sys.nc, "snapshotSweep"), policy: sys.policy, log: createLogger("e2e-sweep", "silent"), intervalMs: 200, lookupTimeoutMs: 10_000, taskTimeoutMs: 30_000, instance: "mvc", vcenters: ["default", B] });
    await sweeper.round();
    expect(sweeper.stats).toMatchObject({ claimed: 2, deleted: 2, failed: 0 });
    expect([await snaps(), await snaps(B)]).toEqual([[], []]);
    await sys.slack.waitFor(() => sys.slack.apiCalls("chat.postMessage").find((c) => c.body.channel === "UALICE" && /Deleted the snapshot `old-b` of `DC0_H0_VM0` in vCenter `vc-b`/.test(String(c.body.text))), 30_000);
    await sys.slack.waitFor(() => sys.slack.apiCalls("chat.postMessage").find((c) => c.body.channel === "UALICE" && /Deleted the snapshot `old-a` of `DC0_H0_VM0`: /.test(String(c.body.text))), 30_000);
  });

  it("the App Home lists the VMs of both vCenters, each marked, with buttons that name its vCenter", async () => {
    await requestJson(sys.nc, ProxyEndpoints.vmSetOwner, { vm: "DC0_H0_VM1", owner: "UHOME" }, { timeoutMs: 10_000 });
    await requestJson(sys.nc, ProxyEndpoints.vmSetOwner, { vcenter: B, vm: "DC0_H0_VM1", owner: "UHOME" }, { timeoutMs: 10_000 });
    const at = Date.now();
    const body = JSON.stringify({ token: "t", team_id: "T0001", api_app_id: "A0001", type: "event_callback", event_id: `Ev${randomUUID().slice(0, 8)}`, event_time: Math.floor(at / 1000), event: { type: "app_home_opened", user: "UHOME", channel: "D0HOME1", tab: "home", event_ts: `${at / 1000}` } });
    expect((await postSigned(sys.gatewayUrl, body, { secret: SIGNING_SECRET })).status).toBe(200);
    type HomeView = { blocks: { type: string; text?: { text: string }; elements?: { value: string }[] }[] };
    const home = await sys.slack.waitFor((calls) => {
      const c = calls.filter((x) => x.method === "views.publish" && x.body.user_id === "UHOME" && x.at >= at).at(-1);
      return c && (JSON.parse(String(c.body.view)) as HomeView);
    });
    const titles = home.blocks.filter((b) => b.type === "section" && b.text?.text.startsWith("*DC0_H0_VM1*")).map((b) => b.text!.text.split("\n")[0]);
    expect(titles).toEqual(["*DC0_H0_VM1* (vc=default)", "*DC0_H0_VM1* (vc=vc-b)"]);
    const values = home.blocks.flatMap((b) => b.elements ?? []).map((e) => e.value);
    expect(values).toContain("delete DC0_H0_VM1 vc=default");
    expect(values).toContain(`delete DC0_H0_VM1 vc=${B}`);
  });
});
