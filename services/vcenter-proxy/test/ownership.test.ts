/**
 * Owner and team as vSphere custom attributes (`iaas.owner`, `iaas.team`): written by create,
 * clone and deploy, read back from the simulator with a separate session; version 1's extraConfig
 * owners migrated; vm-usage, vm-set-owner and scoped lists; and every change this proxy makes
 * showing in its next answer without waiting for the property collector's feed.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { ProxyEndpoints, type ProxyEndpointName, type ProxyRequest, type ProxyResponse } from "@iaas/contracts";
import { createLogger, createMetrics, requestJson } from "@iaas/runtime";
import { VimClient, VmProps, parseCustomValues, type MoRef } from "@iaas/vsphere";
import { startNatsServer, startVcsim, waitUntil, type NatsServer, type Vcsim } from "@iaas/testkit";
import { Vcenter } from "@iaas/vcenter-proxy";
import { failure, startProxy, type StartedProxy } from "./helpers.js";

/** Warnings (the index losing its feed, say), kept to explain a failed `live` check. */
const warnings: string[] = [];
const log = createLogger("test", "warn", { write: (line: string) => void warnings.push(line.trim()) });
const liveWhy = () => `the index is not live; warnings logged: ${warnings.join("\n") || "none"}`;

let nats: NatsServer;
let sim: Vcsim;
let nc: NatsConnection;
let proxy: StartedProxy;
let vc: Vcenter;
/** The proxy's Vcenter without a live index: the same answers, asked of vCenter. */
let plain: Vcenter;
/** A second, independent SOAP session: reads back what the proxy did. */
let observer: VimClient;
const clients: VimClient[] = [];
/** While set, answers to the index's long polls are held back: the index hears nothing from vCenter. */
let gate: Promise<void> | undefined;
let release: () => void = () => undefined;
function holdFeed(): void {
  gate = new Promise((r) => (release = () => {
    gate = undefined;
    r();
  }));
}

beforeAll(async () => {
  [nats, sim] = await Promise.all([startNatsServer(), startVcsim()]);
  const creds = { url: sim.url, username: sim.username, password: sim.password };
  const hook: typeof fetch = async (url, init) => {
    const res = await fetch(url, init);
    if (gate && String(init?.body).includes("<WaitForUpdatesEx")) await gate;
    return res;
  };
  const [a, b, c] = await Promise.all([VimClient.connect({ ...creds, fetch: hook }), VimClient.connect(creds), VimClient.connect(creds)]);
  clients.push(a, b, c);
  observer = c;
  vc = new Vcenter("default", a, log, { liveIndex: true });
  // Pages of 2 VMs: a list read from vCenter spans several.
  plain = new Vcenter("default", b, log, { listPage: 2 });
  await vc.index!.start();
  nc = await connect({ servers: nats.url });
  proxy = await startProxy({ nc, vcenters: new Map([["default", vc]]), log, metrics: createMetrics("vcenter-proxy"), config: { taskTimeoutMs: 30_000 } });
});

afterAll(async () => {
  release();
  await proxy?.stop();
  await nc?.close();
  await vc?.close();
  await Promise.all(clients.map((c) => c.logout().catch(() => undefined)));
  await Promise.all([nats?.dispose(), sim?.stop()]);
});

const call = <K extends ProxyEndpointName>(ep: K, req: ProxyRequest<K>): Promise<ProxyResponse<K>> =>
  requestJson(nc, ProxyEndpoints[ep] as never, req as never, { timeoutMs: 20_000, requestId: `t-${Math.random().toString(36).slice(2)}` }) as Promise<ProxyResponse<K>>;

/** The custom attribute definitions as vCenter holds them. */
async function fieldDefs(): Promise<{ key: number; name: string; managedObjectType?: string | undefined }[]> {
  return observer.customFieldsManager.field();
}

/** The VM's custom attribute values by field name, as a separate session reads them. */
async function attributesOf(name: string): Promise<Record<string, string>> {
  const ref = await observer.searchIndex.findByInventoryPath(`/DC0/vm/${name}`);
  const [r] = await observer.retrieve([ref!], [VmProps.customValue]);
  const values = parseCustomValues(r!.props[VmProps.customValue]);
  const defs = await fieldDefs();
  return Object.fromEntries([...values].map(([k, v]) => [defs.find((d) => d.key === k)?.name ?? String(k), v]));
}

/** How many values of `field` the VM carries (the simulator's SetField appends one per call). */
async function valueCount(name: string, field: string): Promise<number> {
  const ref = await observer.searchIndex.findByInventoryPath(`/DC0/vm/${name}`);
  const [r] = await observer.retrieve([ref!], [VmProps.customValue]);
  const key = (await fieldDefs()).find((d) => d.name === field)!.key;
  const raw = r!.props[VmProps.customValue];
  return (Array.isArray(raw) ? raw : raw ? [raw] : []).filter((v) => Number((v as { key: unknown }).key) === key).length;
}

const provenance = (owner: string, requestId: string, team?: string) => ({ owner, requestId, ...(team ? { team } : {}) });

describe("owner and team as custom attributes", () => {
  it("create defines iaas.owner and iaas.team once and sets them on the VM; a redelivery sets nothing twice", async () => {
    const r = await call("vmCreate", { name: "own-a1", cpu: 2, memoryMB: 2048, diskGB: 10, provenance: provenance("UALICE", "req-own-a1", "platform") });
    expect(r).toMatchObject({ created: true, vm: { name: "own-a1", owner: "UALICE", team: "platform", path: "/DC0/vm/own-a1" } });
    const defs = (await fieldDefs()).filter((d) => d.name.startsWith("iaas."));
    expect(defs.map((d) => [d.name, d.managedObjectType]).sort()).toEqual([
      ["iaas.lease.expires", "VirtualMachine"],
      ["iaas.owner", "VirtualMachine"],
      ["iaas.team", "VirtualMachine"],
    ]);
    expect(await attributesOf("own-a1")).toEqual({ "iaas.owner": "UALICE", "iaas.team": "platform" });

    const again = await call("vmCreate", { name: "own-a1", cpu: 2, memoryMB: 2048, diskGB: 10, provenance: provenance("UALICE", "req-own-a1", "platform") });
    expect(again).toMatchObject({ created: false, vm: { owner: "UALICE", team: "platform" } });
    expect(await valueCount("own-a1", "iaas.owner")).toBe(1);
    // A second proxy (another replica, a restart) finds the definitions and adds none.
    expect(await plain.fields()).toEqual(await vc.fields());
    expect((await fieldDefs()).filter((d) => d.name.startsWith("iaas."))).toHaveLength(3);
  });

  it("a create that stopped before its owner was set: the redelivery sets it", async () => {
    // What an attempt cut off between CreateVM and SetField leaves: the VM with its request id.
    const folder = (await observer.searchIndex.findByInventoryPath("/DC0/vm"))!;
    const pool = (await observer.searchIndex.findByInventoryPath("/DC0/host/DC0_C0/Resources"))!;
    const task = await observer.folder(folder).createVM(
      { name: "own-cut", guestId: "otherLinux64Guest", files: { vmPathName: "[LocalDS_0]" }, numCPUs: 1, memoryMB: 512, extraConfig: [{ key: "iaas.request", value: "req-own-cut" }] },
      pool,
    );
    await task.wait({ timeoutMs: 10_000 });
    expect(await attributesOf("own-cut")).toEqual({});
    const r = await call("vmCreate", { name: "own-cut", cpu: 1, memoryMB: 512, diskGB: 1, provenance: provenance("UBOB", "req-own-cut") });
    expect(r).toMatchObject({ created: false, vm: { owner: "UBOB" } });
    expect(r.vm.team).toBeUndefined();
    expect(await attributesOf("own-cut")).toMatchObject({ "iaas.owner": "UBOB" });
  });

  it("clone and deploy set the owner and team of the request; get and info show both", async () => {
    const c = await call("vmClone", { source: "DC0_H0_VM1", name: "own-c1", sourceKind: "vm", provenance: provenance("UCAROL", "req-own-c1", "S0TEAM1") });
    expect(c.vm).toMatchObject({ owner: "UCAROL", team: "S0TEAM1" });
    expect(await attributesOf("own-c1")).toEqual({ "iaas.owner": "UCAROL", "iaas.team": "S0TEAM1" });
    const d = await call("vmClone", { source: "tmpl-ubuntu-22.04", name: "own-d1", sourceKind: "template", cpu: 1, memoryMB: 1024, provenance: provenance("UCAROL", "req-own-d1") });
    expect(d.vm).toMatchObject({ owner: "UCAROL" });
    expect(await attributesOf("own-d1")).toMatchObject({ "iaas.owner": "UCAROL" });
    expect((await call("vmGet", { vm: "own-c1" })).vm).toMatchObject({ owner: "UCAROL", team: "S0TEAM1" });
    expect((await call("vmInfo", { vm: "own-c1" })).vm).toMatchObject({ owner: "UCAROL", team: "S0TEAM1" });
  });

  it("vm-usage counts VMs, vCPU, memory and provisioned disk per owner and per team, from the index as from vCenter", async () => {
    expect(vc.index!.live, liveWhy()).toBe(true);
    const u = await call("vmUsage", { owner: "UALICE", team: "platform" });
    expect(u).toEqual({ owner: { vms: 1, cpu: 2, memoryGB: 2, diskGB: 10 }, team: { vms: 1, cpu: 2, memoryGB: 2, diskGB: 10 } });
    expect(await plain.usage({ owner: "UALICE", team: "platform" })).toEqual(u);
    const carol = await call("vmUsage", { owner: "UCAROL" });
    expect(carol.owner!.vms).toBe(2);
    expect(carol.team).toBeUndefined();
    expect(await plain.usage({ owner: "UCAROL" })).toEqual(carol);
    expect(await call("vmUsage", { owner: "UNOBODY1", team: "nobody" })).toEqual({ owner: { vms: 0, cpu: 0, memoryGB: 0, diskGB: 0 }, team: { vms: 0, cpu: 0, memoryGB: 0, diskGB: 0 } });
  });

  it("write-through: a create, a set-owner and a delete show in the very next vm-usage, with the index's feed held back", async () => {
    const before = (await call("vmUsage", { owner: "UDAVE1" })).owner!;
    expect(before.vms).toBe(0);
    const builds = vc.index!.stats.builds;
    holdFeed();
    await call("vmCreate", { name: "own-w1", cpu: 1, memoryMB: 1024, diskGB: 4, provenance: provenance("UDAVE1", "req-own-w1") });
    expect((await call("vmUsage", { owner: "UDAVE1" })).owner).toEqual({ vms: 1, cpu: 1, memoryGB: 1, diskGB: 4 });
    await call("vmSetOwner", { vm: "own-w1", owner: "UERIN1", team: "qa" });
    expect((await call("vmUsage", { owner: "UDAVE1", team: "qa" })).owner!.vms).toBe(0);
    expect((await call("vmUsage", { owner: "UERIN1", team: "qa" })).team).toEqual({ vms: 1, cpu: 1, memoryGB: 1, diskGB: 4 });
    await call("vmDestroy", { vm: "own-w1", powerOffFirst: true });
    expect((await call("vmUsage", { owner: "UERIN1", team: "qa" })).team!.vms).toBe(0);
    // Answered from the index all along (live, not rebuilt), which heard none of it from vCenter.
    expect(vc.index!.live, liveWhy()).toBe(true);
    expect(vc.index!.stats.builds).toBe(builds);
    // Whatever late news of the create and the delete the feed brings, nothing comes back: once a
    // VM made after the release is in the index, everything before it has been applied.
    release();
    const folder = (await observer.searchIndex.findByInventoryPath("/DC0/vm"))!;
    const src = (await observer.searchIndex.findByInventoryPath("/DC0/vm/DC0_H0_VM1"))!;
    await (await observer.vm(src).clone(folder, "own-marker", { location: {}, template: false, powerOn: false })).wait({ timeoutMs: 10_000 });
    await waitUntil("the feed caught up", () => vc.index!.lookup("own-marker").length === 1);
    expect(vc.index!.lookup("own-w1")).toEqual([]);
    expect((await call("vmUsage", { owner: "UERIN1" })).owner!.vms).toBe(0);
  });
});

describe("vm-set-owner", () => {
  it("adopts an unowned VM, hands it on, sets and clears the team; `changed` says whether anything did", async () => {
    expect((await call("vmGet", { vm: "DC0_C0_RP0_VM1" })).vm.owner).toBeUndefined();
    const a = await call("vmSetOwner", { vm: "DC0_C0_RP0_VM1", owner: "UALICE" });
    expect(a).toMatchObject({ changed: true, vm: { name: "DC0_C0_RP0_VM1", owner: "UALICE" } });
    expect(await attributesOf("DC0_C0_RP0_VM1")).toEqual({ "iaas.owner": "UALICE" });
    expect((await call("vmSetOwner", { vm: "DC0_C0_RP0_VM1", owner: "UALICE" })).changed).toBe(false);
    const t = await call("vmSetOwner", { vm: "DC0_C0_RP0_VM1", team: "platform" });
    expect(t).toMatchObject({ changed: true, vm: { owner: "UALICE", team: "platform" } });
    const cleared = await call("vmSetOwner", { vm: "DC0_C0_RP0_VM1", team: null });
    expect(cleared.changed).toBe(true);
    expect(cleared.vm.team).toBeUndefined();
    // The simulator keeps every value SetField wrote; the last one counts.
    expect(await attributesOf("DC0_C0_RP0_VM1")).toEqual({ "iaas.owner": "UALICE", "iaas.team": "" });
    expect((await call("vmGet", { vm: "DC0_C0_RP0_VM1" })).vm.team).toBeUndefined();
    expect((await call("vmSetOwner", { vm: "DC0_C0_RP0_VM1", team: null })).changed).toBe(false);
    const bob = await call("vmSetOwner", { vm: "DC0_C0_RP0_VM1", owner: "UBOB" });
    expect(bob.vm.owner).toBe("UBOB");
    expect((await call("vmUsage", { owner: "UBOB" })).owner!.vms).toBeGreaterThanOrEqual(1);
    expect(await plain.usage({ owner: "UBOB" })).toEqual(await call("vmUsage", { owner: "UBOB" }));
  });

  it("refuses a template and a VM that does not exist", async () => {
    const e = await failure(call("vmSetOwner", { vm: "tmpl-ubuntu-22.04", owner: "UALICE" }));
    expect(e.code).toBe("IAAS_INVALID_ARGUMENT");
    expect(e.message).toContain("template");
    expect(await attributesOf("tmpl-ubuntu-22.04")).toEqual({});
    expect((await failure(call("vmSetOwner", { vm: "no-such-vm", owner: "UALICE" }))).code).toBe("IAAS_VM_NOT_FOUND");
  });
});

describe("vm-list with a scope", () => {
  it("lists only VMs owned by the caller or in one of their teams; unowned VMs never", async () => {
    const names = async (scope: { owner: string; teams: string[] }) => (await call("vmList", { scope })).vms.map((v) => v.name);
    expect(await names({ owner: "UALICE", teams: [] })).toEqual(["own-a1"]);
    expect(await names({ owner: "UZED01", teams: ["platform"] })).toEqual(["own-a1"]);
    expect(await names({ owner: "UCAROL", teams: ["S0TEAM1"] })).toEqual(["own-c1", "own-d1"]);
    expect(await names({ owner: "UZED01", teams: [] })).toEqual([]);
    const all = (await call("vmList", {})).vms.map((v) => v.name);
    expect(all).toContain("DC0_H0_VM0");
  });
});

describe("vm-list bounded by its answer", () => {
  it("answers the first `limit` matches by name and how many match, the same from the index as page by page from vCenter", async () => {
    const every = (await call("vmList", {})).vms.map((v) => v.name);
    expect(every.length).toBeGreaterThan(4);
    expect(every).toEqual([...every].sort((a, b) => a.localeCompare(b)));
    expect(await call("vmList", { limit: 2 })).toMatchObject({ vms: [{ name: every[0] }, { name: every[1] }], total: every.length });
    expect(await call("vmList", { limit: 0 })).toEqual({ vms: [], total: every.length });
    // Case-insensitive, `?` one character; the total counts the matches, not the inventory.
    expect(await call("vmList", { glob: "dc0_h0_vm?", limit: 1 })).toMatchObject({ vms: [{ name: "DC0_H0_VM0" }], total: 2 });
    expect((await call("vmList", { glob: "OWN-*" })).vms.map((v) => v.name)).toEqual(every.filter((n) => n.startsWith("own-")));
    expect(await call("vmList", { scope: { owner: "UCAROL", teams: ["S0TEAM1"] }, limit: 1 })).toMatchObject({ vms: [{ name: "own-c1" }], total: 2 });
    expect(await call("vmList", { glob: "nothing-*", limit: 20 })).toEqual({ vms: [], total: 0 });
    for (const q of [{}, { limit: 3 }, { glob: "*vm1", limit: 5 }, { scope: { owner: "UALICE", teams: ["S0TEAM1"] } }, { includeTemplates: true, limit: 4 }]) {
      expect(vc.index!.live, liveWhy()).toBe(true);
      expect(await plain.list(q), JSON.stringify(q)).toEqual(await vc.list(q));
    }
  });
});

describe("migration of version 1's owners", () => {
  it("copies extraConfig iaas.owner into the custom attribute, once; reads fall back to extraConfig until then", async () => {
    const vm = (await observer.searchIndex.findByInventoryPath("/DC0/vm/DC0_H0_VM0")) as MoRef;
    await (await observer.vm(vm).reconfigure({ extraConfig: [{ key: "iaas.owner", value: "UOLD01" }] })).wait({ timeoutMs: 10_000 });
    expect((await call("vmGet", { vm: "DC0_H0_VM0" })).vm.owner).toBe("UOLD01");
    expect(await attributesOf("DC0_H0_VM0")).toEqual({});
    // Not counted from the index before the migration: the index holds custom values only.
    expect(await plain.usage({ owner: "UOLD01" })).toMatchObject({ owner: { vms: 1 } });

    expect(await vc.migrateOwners()).toBe(1);
    expect(await attributesOf("DC0_H0_VM0")).toEqual({ "iaas.owner": "UOLD01" });
    expect((await call("vmUsage", { owner: "UOLD01" })).owner!.vms).toBe(1);
    expect(await vc.migrateOwners()).toBe(0);
    expect(await valueCount("DC0_H0_VM0", "iaas.owner")).toBe(1);
  });
});
