import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  VimFault,
  isVimFault,
  listDatastores,
  listFolders,
  listHosts,
  listResourcePools,
  listVmSummaries,
  readVmSummaries,
  type VimClient,
} from "@iaas/vsphere";
import { connect, mustFind, rejection, startVcsim, type Vcsim } from "./helpers.js";

let sim: Vcsim;
let c: VimClient;

beforeAll(async () => {
  sim = await startVcsim();
  c = await connect(sim);
});

afterAll(async () => {
  await c?.logout();
  await sim?.stop();
});

const VPX_VMS = ["DC0_C0_RP0_VM0", "DC0_C0_RP0_VM1", "DC0_H0_VM0", "DC0_H0_VM1"];

describe("property collector", () => {
  it("retrieveContainer lists every VM with the requested properties", async () => {
    const rs = await c.retrieveContainer("VirtualMachine", [
      "name",
      "runtime.powerState",
      "config.hardware.numCPU",
      "config.hardware.memoryMB",
    ]);
    const byName = new Map(rs.map((r) => [r.props.name, r]));
    for (const name of VPX_VMS) {
      const r = byName.get(name);
      expect(r, name).toBeDefined();
      expect(r!.obj.type).toBe("VirtualMachine");
      expect(r!.props["runtime.powerState"]).toBe("poweredOn");
      expect(typeof r!.props["config.hardware.numCPU"]).toBe("number");
      expect(r!.props["config.hardware.numCPU"]).toBeGreaterThan(0);
      expect(typeof r!.props["config.hardware.memoryMB"]).toBe("number");
    }
    expect(byName.get("tmpl-ubuntu-22.04")?.props["runtime.powerState"]).toBe("poweredOff");
  });

  it("retrieveContainer honours container, recursive and maxObjects", async () => {
    const pool = await mustFind(c, "/DC0/host/DC0_C0/Resources");
    const inPool = await c.retrieveContainer("VirtualMachine", ["name"], { container: pool, maxObjects: 1 });
    expect(inPool.map((r) => r.props.name).sort()).toEqual(["DC0_C0_RP0_VM0", "DC0_C0_RP0_VM1"]);
    const dc = await mustFind(c, "/DC0");
    const shallow = await c.retrieveContainer("VirtualMachine", ["name"], { container: dc, recursive: false });
    expect(shallow).toEqual([]);
  });

  it("retrieve returns objects in the order asked, with unreadable paths in missing", async () => {
    const a = await mustFind(c, "/DC0/vm/DC0_H0_VM1");
    const b = await mustFind(c, "/DC0/vm/DC0_H0_VM0");
    const rs = await c.retrieve([a, b], ["name", "no.such.property"]);
    expect(rs.map((r) => r.props.name)).toEqual(["DC0_H0_VM1", "DC0_H0_VM0"]);
    const missing = rs[0]!.missing["no.such.property"];
    expect(missing).toBeInstanceOf(VimFault);
    expect(missing!.faultType).toBe("InvalidProperty");
  });

  it("retrieve of an object that does not exist is ManagedObjectNotFound", async () => {
    const err = await rejection(c.retrieve([{ type: "VirtualMachine", value: "vm-does-not-exist" }], ["name"]));
    expect(isVimFault(err, "ManagedObjectNotFound")).toBe(true);
    expect((err as VimFault).fault.obj).toEqual({ type: "VirtualMachine", value: "vm-does-not-exist" });
    expect((err as VimFault).is("RuntimeFault")).toBe(true);
  });

  it("VirtualMachine.properties throws the fault of a path it cannot read", async () => {
    const vm = await mustFind(c, "/DC0/vm/DC0_H0_VM0");
    expect(await c.vm(vm).properties(["name", "config.hardware.numCPU"])).toEqual({
      name: "DC0_H0_VM0",
      "config.hardware.numCPU": 1,
    });
    const err = await rejection(c.vm(vm).properties(["name", "config.bogus"]));
    expect(isVimFault(err, "InvalidProperty")).toBe(true);
  });
});

describe("SearchIndex", () => {
  it("findByInventoryPath finds VMs, templates, pools and datastores", async () => {
    expect((await c.searchIndex.findByInventoryPath("/DC0/vm/DC0_H0_VM0"))?.type).toBe("VirtualMachine");
    expect((await c.searchIndex.findByInventoryPath("DC0/vm/tmpl-ubuntu-22.04"))?.type).toBe("VirtualMachine");
    expect((await c.searchIndex.findByInventoryPath("/DC0/host/DC0_C0/Resources"))?.type).toBe("ResourcePool");
    expect((await c.searchIndex.findByInventoryPath("/DC0/datastore/LocalDS_0"))?.type).toBe("Datastore");
  });

  it("findByInventoryPath answers undefined for a path that does not exist", async () => {
    expect(await c.searchIndex.findByInventoryPath("/DC0/vm/nope")).toBeUndefined();
  });

  it("findChild and findByUuid", async () => {
    const vmFolder = await mustFind(c, "/DC0/vm");
    const vm = await c.searchIndex.findChild(vmFolder, "DC0_H0_VM1");
    expect(vm).toEqual(await mustFind(c, "/DC0/vm/DC0_H0_VM1"));
    expect(await c.searchIndex.findChild(vmFolder, "nope")).toBeUndefined();
    const uuid = (await c.vm(vm!).properties(["config.uuid"]))["config.uuid"] as string;
    expect(uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(await c.searchIndex.findByUuid(uuid)).toEqual(vm);
    expect(await c.searchIndex.findByUuid("00000000-0000-0000-0000-000000000000")).toBeUndefined();
  });

  it("findByIp finds a VM by its guest address", async () => {
    const vm = await mustFind(c, "/DC0/vm/DC0_H0_VM0");
    const ip = (await c.vm(vm).properties(["guest.ipAddress"]))["guest.ipAddress"] as string;
    expect(await c.searchIndex.findByIp(ip)).toEqual(vm);
  });
});

describe("concurrency limit", () => {
  it("queued calls go out in the order they were made", async () => {
    const sent: string[] = [];
    const hook: typeof fetch = (url, init) => {
      const m = /<inventoryPath>([^<]*)<\/inventoryPath>/.exec(String(init?.body));
      if (m?.[1]) sent.push(m[1]);
      return fetch(url, init);
    };
    const q = await connect(sim, { concurrency: 1, fetch: hook });
    try {
      const paths = VPX_VMS.map((n) => `/DC0/vm/${n}`).concat(["/DC0/vm", "/DC0/host", "/DC0/datastore"]);
      const refs = await Promise.all(paths.map((p) => q.searchIndex.findByInventoryPath(p)));
      expect(refs.every((r) => r !== undefined)).toBe(true);
      expect(sent).toEqual(paths);
    } finally {
      await q.logout();
    }
  });
});

describe("readers", () => {
  it("VM summaries carry what the proxy shows", async () => {
    const all = await listVmSummaries(c);
    expect(all.map((v) => v.name).sort()).toEqual([...VPX_VMS, "tmpl-ubuntu-22.04"].sort());
    const vm0 = all.find((v) => v.name === "DC0_H0_VM0")!;
    expect(vm0).toMatchObject({
      powerState: "poweredOn",
      numCPU: 1,
      memoryMB: 32,
      template: false,
      cpuHotAddEnabled: true,
      memoryHotAddEnabled: true,
      toolsRunningStatus: "guestToolsRunning",
      ipAddress: expect.stringMatching(/^10\.0\.0\.\d+$/),
    });
    expect(vm0.host?.type).toBe("HostSystem");
    expect(vm0.resourcePool?.type).toBe("ResourcePool");
    expect(vm0.parent?.type).toBe("Folder");
    expect(vm0.datastores.length).toBeGreaterThan(0);
    expect(vm0.disks.length).toBeGreaterThan(0);
    expect(vm0.disks[0]!.capacityInKB).toBeGreaterThan(0);
    expect(vm0.disks[0]!.fileName).toMatch(/^\[LocalDS_\d+\] /);
    const vm1 = all.find((v) => v.name === "DC0_H0_VM1")!;
    expect(vm1.cpuHotAddEnabled).toBe(false);
    const tmpl = all.find((v) => v.name === "tmpl-ubuntu-22.04")!;
    expect(tmpl).toMatchObject({ template: true, powerState: "poweredOff", resourcePool: undefined });

    const [one] = await readVmSummaries(c, [vm0.ref]);
    expect(one).toEqual(vm0);
    expect(await c.vm(vm0.ref).summary()).toEqual(vm0);
  });

  it("inventory path of a VM in one round trip", async () => {
    const vm = await mustFind(c, "/DC0/vm/DC0_H0_VM0");
    const calls = c.stats.calls;
    expect(await c.vm(vm).inventoryPath()).toBe("/DC0/vm/DC0_H0_VM0");
    expect(c.stats.calls - calls).toBe(1);
    const pool = await mustFind(c, "/DC0/host/DC0_C0/Resources");
    const { inventoryPath } = await import("@iaas/vsphere");
    expect(await inventoryPath(c, pool)).toBe("/DC0/host/DC0_C0/Resources");
  });

  it("datastores, hosts, pools and folders", async () => {
    const dss = await listDatastores(c);
    expect(dss.map((d) => d.name).sort()).toEqual(["LocalDS_0", "LocalDS_1", "LocalDS_2"]);
    for (const d of dss) {
      expect(d.capacity).toBeGreaterThan(0);
      expect(d.freeSpace).toBeGreaterThanOrEqual(0);
      expect(d.accessible).toBe(true);
      expect(d.type).not.toBe("");
      expect(d.hosts.length).toBeGreaterThan(0);
      expect(d.hosts[0]!.host.type).toBe("HostSystem");
    }
    const hosts = await listHosts(c);
    expect(hosts.map((h) => h.name).sort()).toEqual(["DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2", "DC0_H0"]);
    expect(hosts[0]!.connectionState).toBe("connected");
    expect(hosts[0]!.datastores.length).toBeGreaterThan(0);
    const pools = await listResourcePools(c);
    expect(pools.map((p) => p.name)).toContain("Resources");
    expect(pools.every((p) => p.owner !== undefined)).toBe(true);
    const folders = await listFolders(c);
    const vmFolder = folders.find((f) => f.name === "vm")!;
    expect(vmFolder.childType).toContain("VirtualMachine");
  });
});
