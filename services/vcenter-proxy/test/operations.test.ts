import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { ProxyEndpoints, type ProxyEndpointName, type ProxyRequest, type ProxyResponse } from "@iaas/contracts";
import { createLogger, createMetrics, requestJson } from "@iaas/runtime";
import { VimClient, listVmSummaries, readVmSummaries, type MoRef } from "@iaas/vsphere";
import { startNatsServer, startVcsim, type NatsServer, type Vcsim } from "@iaas/testkit";
import { Vcenter } from "@iaas/vcenter-proxy";
import { failure, startProxy, type StartedProxy } from "./helpers.js";

const log = createLogger("test", "silent");
const provenance = (requestId: string) => ({ owner: "UOWNER1", requestId });

// Both ways the proxy finds VMs: a listing per look-up, and the live inventory index (as main runs it).
describe.each([
  { index: false, mode: "look-ups by listing" },
  { index: true, mode: "live inventory index" },
])("vcenter-proxy operations against the simulator ($mode)", ({ index }) => {
  let nats: NatsServer;
  let sim: Vcsim;
  let nc: NatsConnection;
  let client: VimClient;
  let observer: VimClient;
  let proxy: StartedProxy;
  let vcenter: Vcenter;

  beforeAll(async () => {
    [nats, sim] = await Promise.all([
      startNatsServer(),
      // Distinct free space per datastore, so "most free space" has one answer.
      startVcsim({ datastores: 3, datastoreSpaceGiB: { LocalDS_0: { capacity: 100, free: 10 }, LocalDS_1: { capacity: 100, free: 70 }, LocalDS_2: { capacity: 100, free: 40 } } }),
    ]);
    client = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password });
    observer = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password });
    nc = await connect({ servers: nats.url });
    vcenter = new Vcenter("default", client, log, { liveIndex: index });
    if (index) await vcenter.index!.start();
    proxy = await startProxy({ nc, vcenters: new Map([["default", vcenter]]), log, metrics: createMetrics("vcenter-proxy"), config: { taskTimeoutMs: 30_000 } });
  });
  afterAll(async () => {
    await proxy?.stop();
    await vcenter?.close();
    await nc?.close();
    await Promise.all([nats?.dispose(), sim?.stop()]);
  });

  function call<K extends ProxyEndpointName>(key: K, req: ProxyRequest<K>): Promise<ProxyResponse<K>> {
    return requestJson(nc, ProxyEndpoints[key] as never, req as never, { timeoutMs: 30_000 }) as Promise<ProxyResponse<K>>;
  }
  const namesOf = async (name: string) => (await listVmSummaries(observer)).filter((v) => v.name === name);

  it("info shows power, CPU, memory, disks and datastores, host, guest, IP, tools and hot-add", async () => {
    const { vm } = await call("vmInfo", { vm: "DC0_H0_VM0" });
    expect(vm).toMatchObject({ name: "DC0_H0_VM0", path: "/DC0/vm/DC0_H0_VM0", powerState: "poweredOn", template: false, toolsStatus: "guestToolsRunning", host: "DC0_H0", cpuHotAddEnabled: true, memoryHotAddEnabled: true });
    expect(vm.ipAddress).toMatch(/^10\.0\.0\./);
    expect(vm.datastores.length).toBeGreaterThan(0);
    expect(vm.disks[0]).toMatchObject({ capacityGB: expect.any(Number) });
  });

  it("lists VMs without templates by default, sorted; templates separately", async () => {
    const { vms } = await call("vmList", {});
    expect(vms.map((v) => v.name)).toEqual([...vms.map((v) => v.name)].sort((a, b) => a.localeCompare(b)));
    expect(vms.some((v) => v.template)).toBe(false);
    expect(vms.map((v) => v.name)).toEqual(expect.arrayContaining(["DC0_H0_VM0", "DC0_C0_RP0_VM1"]));
    const { templates } = await call("templateList", {});
    expect(templates).toEqual([expect.objectContaining({ name: "tmpl-ubuntu-22.04", path: "/DC0/vm/tmpl-ubuntu-22.04" })]);
  });

  it("lists datastores with live capacity and the hosts that mount them", async () => {
    const { datastores } = await call("datastoreList", {});
    expect(datastores.map((d) => [d.name, d.capacityGB, d.freeGB])).toEqual([
      ["LocalDS_0", 100, 10],
      ["LocalDS_1", 100, 70],
      ["LocalDS_2", 100, 40],
    ]);
    expect(datastores[0]!.hosts).toEqual(expect.arrayContaining(["DC0_H0", "DC0_C0_H0"]));
  });

  it("creates a VM of a size on the datastore with the most room, with its owner recorded", async () => {
    const r = await call("vmCreate", { name: "app-01", cpu: 2, memoryMB: 2048, diskGB: 16, provenance: provenance("req-create-01") });
    expect(r.created).toBe(true);
    expect(r.vm).toMatchObject({ name: "app-01", numCpu: 2, memoryMB: 2048, powerState: "poweredOff", owner: "UOWNER1" });
    const { vm } = await call("vmInfo", { vm: "app-01" });
    expect(vm.datastores).toEqual(["LocalDS_1"]);
    expect(vm.disks).toEqual([expect.objectContaining({ capacityGB: 16, datastore: "LocalDS_1" })]);
    expect(vm.createdBy).toBe("req-create-01");
  });

  it("a repeated create (same request) makes no second VM; another request gets DuplicateName", async () => {
    const again = await call("vmCreate", { name: "app-01", cpu: 2, memoryMB: 2048, diskGB: 16, provenance: provenance("req-create-01") });
    expect(again.created).toBe(false);
    const other = await failure(call("vmCreate", { name: "app-01", cpu: 1, memoryMB: 1024, diskGB: 1, provenance: provenance("req-create-02") }));
    expect(other.code).toBe("IAAS_DUPLICATE_NAME");
    expect(await namesOf("app-01")).toHaveLength(1);
  });

  it("refuses placement that does not exist, before vCenter sees it", async () => {
    const e = await failure(call("vmCreate", { name: "nowhere", cpu: 1, memoryMB: 128, diskGB: 1, placement: { datastore: "NoSuchDS" }, provenance: provenance("req-nowhere-1") }));
    expect(e.code).toBe("IAAS_INVALID_ARGUMENT");
    expect(e.message).toBe("placement: datastore `NoSuchDS` does not exist or is not reachable from the target pool.");
    const f = await failure(call("vmCreate", { name: "nowhere", cpu: 1, memoryMB: 128, diskGB: 1, placement: { resourcePool: "/DC0/host/nope" }, provenance: provenance("req-nowhere-2") }));
    expect(f.message).toBe("placement: no resource pool or cluster at `/DC0/host/nope`.");
    expect(await namesOf("nowhere")).toHaveLength(0);
  });

  it("clones a VM, refuses a template as a clone source, and deploys a template with a size", async () => {
    const c = await call("vmClone", { source: "DC0_H0_VM1", name: "app-02", sourceKind: "vm", provenance: provenance("req-clone-001") });
    expect(c.vm).toMatchObject({ name: "app-02", owner: "UOWNER1" });
    const wrong = await failure(call("vmClone", { source: "tmpl-ubuntu-22.04", name: "x", sourceKind: "vm", provenance: provenance("req-clone-002") }));
    expect(wrong.message).toBe("`tmpl-ubuntu-22.04` is a template, not a VM; use `/iaas deploy` to make a VM from it.");
    const notTemplate = await failure(call("vmClone", { source: "DC0_H0_VM1", name: "x", sourceKind: "template", provenance: provenance("req-clone-003") }));
    expect(notTemplate.code).toBe("IAAS_INVALID_STATE");
    const d = await call("vmClone", { source: "tmpl-ubuntu-22.04", name: "web-01", sourceKind: "template", cpu: 2, memoryMB: 4096, powerOn: true, provenance: provenance("req-deploy-01") });
    expect(d.vm).toMatchObject({ name: "web-01", numCpu: 2, memoryMB: 4096, powerState: "poweredOn", template: false });
    const again = await call("vmClone", { source: "tmpl-ubuntu-22.04", name: "web-01", sourceKind: "template", cpu: 2, memoryMB: 4096, provenance: provenance("req-deploy-01") });
    expect(again.created).toBe(false);
    expect(await namesOf("web-01")).toHaveLength(1);
  });

  it("resizes within what vCenter allows: hot-add on a running VM, anything when off", async () => {
    // DC0_H0_VM0 has hot-add (the demo inventory enables it on every other VM); DC0_H0_VM1 does not.
    const up = await call("vmReconfigure", { vm: "DC0_H0_VM0", cpu: 2, memoryMB: 2048 });
    expect(up.changed).toBe(true);
    expect(up.vm).toMatchObject({ numCpu: 2, memoryMB: 2048, powerState: "poweredOn" });
    const same = await call("vmReconfigure", { vm: "DC0_H0_VM0", cpu: 2 });
    expect(same.changed).toBe(false);
    const down = await failure(call("vmReconfigure", { vm: "DC0_H0_VM0", cpu: 1 }));
    expect(down.message).toBe("Cannot remove vCPUs while `DC0_H0_VM0` is powered on; power it off first.");
    const noHotAdd = await failure(call("vmReconfigure", { vm: "DC0_H0_VM1", memoryMB: 4096 }));
    expect(noHotAdd.code).toBe("IAAS_HOT_ADD_DISABLED");
    const off = await call("vmReconfigure", { vm: "app-01", cpu: 1, memoryMB: 1024 });
    expect(off.vm).toMatchObject({ numCpu: 1, memoryMB: 1024 });
  });

  it("relocates a VM to another datastore and says when it is already there", async () => {
    const before = await call("vmInfo", { vm: "app-01" });
    expect(before.vm.datastores).toEqual(["LocalDS_1"]);
    const moved = await call("vmRelocate", { vm: "app-01", datastore: "LocalDS_2" });
    expect(moved).toMatchObject({ moved: true, vm: { datastores: ["LocalDS_2"] } });
    const again = await call("vmRelocate", { vm: "app-01", datastore: "LocalDS_2" });
    expect(again.moved).toBe(false);
    const e = await failure(call("vmRelocate", { vm: "app-01", datastore: "NoSuchDS" }));
    expect(e.code).toBe("IAAS_NOT_FOUND");
    const onDs = await call("datastoreVms", { datastore: "LocalDS_2" });
    expect(onDs.vms.map((v) => v.name)).toContain("app-01");
  });

  it("lists a user's VMs by owner", async () => {
    const { vms } = await call("vmList", { owner: "UOWNER1" });
    expect(vms.map((v) => v.name).sort()).toEqual(["app-01", "app-02", "web-01"]);
  });

  it("deletes: refuses a running VM unless asked to power off first; a VM already gone is not an error", async () => {
    const on = await failure(call("vmDestroy", { vm: "web-01" }));
    expect(on.message).toBe("Cannot delete: `web-01` is powered on. Power it off first.");
    expect(await call("vmDestroy", { vm: "web-01", powerOffFirst: true })).toEqual({ name: "web-01", destroyed: true });
    expect(await namesOf("web-01")).toHaveLength(0);
    expect(await call("vmDestroy", { vm: "web-01" })).toEqual({ name: "web-01", destroyed: false });
  });

  it("reads events after a checkpoint, oldest first, including posted alarm events", async () => {
    const first = await call("eventsRead", { maxCount: 1000 });
    expect(first.latestKey).toBeGreaterThan(0);
    const keys = first.events.map((e) => e.key);
    expect(keys).toEqual([...keys].sort((a, b) => a - b));
    const vm = (await observer.searchIndex.findByInventoryPath("/DC0/vm/DC0_H0_VM0")) as MoRef;
    const [s] = await readVmSummaries(observer, [vm]);
    await observer.eventManager.postEvent({
      _type: "AlarmStatusChangedEvent",
      vm: { name: s!.name, vm },
      fullFormattedMessage: "Alarm 'VM CPU Usage' on DC0_H0_VM0 changed from Green to Red",
      alarm: { name: "VM CPU Usage", alarm: { type: "Alarm", value: "alarm-6" } },
      source: { name: "Datacenters", entity: { type: "Folder", value: "group-d1" } },
      entity: { name: s!.name, entity: vm },
      from: "green",
      to: "red",
    } as never);
    const next = await call("eventsRead", { afterKey: first.latestKey!, eventTypes: ["AlarmStatusChangedEvent"] });
    expect(next.events).toHaveLength(1);
    expect(next.events[0]).toMatchObject({ eventClass: "AlarmStatusChangedEvent", data: { to: "red", from: "green", alarm: { name: "VM CPU Usage" } } });
    expect(next.events[0]!.key).toBeGreaterThan(first.latestKey!);
  });
});
