import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ValidationError,
  VimFault,
  isVimFault,
  listDatastores,
  type MoRef,
  type VimClient,
  type VirtualMachineConfigSpec,
} from "@iaas/vsphere";
import { connect, mustFind, rejection, startVcsim, type Vcsim } from "./helpers.js";

let sim: Vcsim;
let c: VimClient;
let vmFolder: MoRef;
let pool: MoRef;

beforeAll(async () => {
  sim = await startVcsim();
  c = await connect(sim);
  vmFolder = await mustFind(c, "/DC0/vm");
  pool = await mustFind(c, "/DC0/host/DC0_C0/Resources");
});

afterAll(async () => {
  await c?.logout();
  await sim?.stop();
});

function vmConfig(name: string, over: Partial<VirtualMachineConfigSpec> = {}): VirtualMachineConfigSpec {
  return {
    name,
    guestId: "ubuntu64Guest",
    files: { vmPathName: "[LocalDS_1]" },
    numCPUs: 2,
    memoryMB: 1024,
    deviceChange: [
      {
        operation: "add",
        device: { _type: "VirtualLsiLogicController", key: -100, busNumber: 0, sharedBus: "noSharing" },
      },
      {
        operation: "add",
        fileOperation: "create",
        device: {
          _type: "VirtualDisk",
          key: -101,
          backing: { _type: "VirtualDiskFlatVer2BackingInfo", fileName: "", diskMode: "persistent", thinProvisioned: true },
          controllerKey: -100,
          unitNumber: 0,
          capacityInKB: 131072,
        },
      },
    ],
    ...over,
  };
}

async function createVM(name: string, over: Partial<VirtualMachineConfigSpec> = {}): Promise<MoRef> {
  const task = await c.folder(vmFolder).createVM(vmConfig(name, over), pool);
  const result = await task.wait({ timeoutMs: 30_000 });
  expect(result).toMatchObject({ type: "VirtualMachine" });
  return result as MoRef;
}

describe("CreateVM_Task", () => {
  it("creates a powered-off VM with the requested hardware and disk", async () => {
    const vm = await createVM("create-1", { annotation: "made by a test", cpuHotAddEnabled: true });
    const s = await c.vm(vm).summary();
    expect(s).toMatchObject({
      name: "create-1",
      powerState: "poweredOff",
      numCPU: 2,
      memoryMB: 1024,
      annotation: "made by a test",
      cpuHotAddEnabled: true,
      memoryHotAddEnabled: false,
      template: false,
    });
    expect(s.disks).toHaveLength(1);
    expect(s.disks[0]).toMatchObject({ capacityInKB: 131072, fileName: "[LocalDS_1] create-1/create-1.vmdk" });
    expect(await c.vm(vm).inventoryPath()).toBe("/DC0/vm/create-1");
    expect(await c.searchIndex.findByInventoryPath("/DC0/vm/create-1")).toEqual(vm);
  });

  it("a name with XML metacharacters and unicode round-trips", async () => {
    const name = `a&b <c> "d" 'é' ✓`;
    const vm = await createVM(name);
    expect((await c.vm(vm).summary()).name).toBe(name);
    expect(await c.searchIndex.findByInventoryPath(`/DC0/vm/${name}`)).toEqual(vm);
    const annotation = "line 1\nline 2\ttab\r\n]]> &amp; <!-- x --> 😀";
    await (await c.vm(vm).reconfigure({ annotation })).wait();
    expect((await c.vm(vm).summary()).annotation).toBe(annotation);
  });

  it("without a name the task fails with InvalidVmConfig naming the property", async () => {
    const cfg = vmConfig("x");
    delete cfg.name;
    const task = await c.folder(vmFolder).createVM(cfg, pool);
    const err = await rejection(task.wait());
    expect(isVimFault(err, "InvalidVmConfig")).toBe(true);
    expect((err as VimFault).fault.property).toBe("configSpec.name");
  });

  it("is refused before sending when the datastore or pool is wrong (vcsim would crash)", async () => {
    const noDs = await rejection(c.folder(vmFolder).createVM(vmConfig("x", { files: { vmPathName: "[NoSuchDS]" } }), pool));
    expect(noDs).toBeInstanceOf(ValidationError);
    expect((noDs as ValidationError).field).toBe("config.files.vmPathName");
    const noPath = await rejection(c.folder(vmFolder).createVM(vmConfig("x", { files: { vmPathName: "LocalDS_1" } }), pool));
    expect((noPath as ValidationError).field).toBe("config.files.vmPathName");
    const noPool = await rejection(c.folder(vmFolder).createVM(vmConfig("x"), { type: "ResourcePool", value: "" }));
    expect((noPool as ValidationError).field).toBe("pool");
    const gonePool = await rejection(c.folder(vmFolder).createVM(vmConfig("x"), { type: "ResourcePool", value: "resgroup-404" }));
    expect(isVimFault(gonePool, "ManagedObjectNotFound")).toBe(true);
    // No CreateVM_Task went out (vcsim would have left a VM, named or not, in the folder).
    const names = (await c.retrieveContainer("VirtualMachine", ["name"], { container: vmFolder })).map((r) => r.props.name);
    expect(names).not.toContain("x");
    expect(names).not.toContain(undefined);
  });
});

describe("clone, templates, reconfigure, relocate, destroy", () => {
  it("clones a VM; the result is the new VM with the source's hardware", async () => {
    const src = await mustFind(c, "/DC0/vm/DC0_H0_VM0");
    const task = await c.vm(src).clone(vmFolder, "clone-1", { location: {}, template: false, powerOn: false });
    const vm = (await task.wait()) as MoRef;
    const [a, b] = await Promise.all([c.vm(src).summary(), c.vm(vm).summary()]);
    expect(b.name).toBe("clone-1");
    expect(b.numCPU).toBe(a.numCPU);
    expect(b.memoryMB).toBe(a.memoryMB);
    expect(b.ref).not.toEqual(a.ref);
  });

  it("deploys from a template with location.pool; without a pool it is InvalidArgument", async () => {
    const tmpl = await mustFind(c, "/DC0/vm/tmpl-ubuntu-22.04");
    const bad = await c.vm(tmpl).clone(vmFolder, "from-tmpl-nopool", { location: {}, template: false, powerOn: false });
    const err = await rejection(bad.wait());
    expect(isVimFault(err, "InvalidArgument")).toBe(true);
    expect((err as VimFault).fault.invalidProperty).toBe("spec.location.pool");

    const ds2 = (await listDatastores(c)).find((d) => d.name === "LocalDS_2")!;
    const task = await c.vm(tmpl).clone(vmFolder, "from-tmpl", {
      location: { pool, datastore: ds2.ref },
      template: false,
      powerOn: false,
      config: { numCPUs: 2, annotation: "deployed" },
    });
    const vm = (await task.wait()) as MoRef;
    const s = await c.vm(vm).summary();
    expect(s).toMatchObject({ name: "from-tmpl", template: false, resourcePool: pool });
    expect(s.datastores).toEqual([ds2.ref]);
    await (await c.vm(vm).powerOn()).wait();
    expect((await c.vm(vm).summary()).powerState).toBe("poweredOn");
  });

  it("markAsTemplate / markAsVirtualMachine and their faults", async () => {
    const on = await mustFind(c, "/DC0/vm/DC0_H0_VM1");
    expect(isVimFault(await rejection(c.vm(on).markAsTemplate()), "InvalidPowerState")).toBe(true);
    const vm = await createVM("to-template");
    await c.vm(vm).markAsTemplate();
    expect((await c.vm(vm).summary()).template).toBe(true);
    expect(isVimFault(await rejection(c.vm(vm).markAsTemplate()), "NotSupported")).toBe(true);
    await c.vm(vm).markAsVirtualMachine(pool);
    const s = await c.vm(vm).summary();
    expect(s.template).toBe(false);
    expect(s.resourcePool).toEqual(pool);
    expect(isVimFault(await rejection(c.vm(vm).markAsVirtualMachine(pool)), "NotSupported")).toBe(true);
  });

  it("reconfigures CPU, memory and extraConfig while powered on", async () => {
    const vm = await mustFind(c, "/DC0/vm/DC0_C0_RP0_VM0");
    await (
      await c.vm(vm).reconfigure({
        numCPUs: 4,
        memoryMB: 4096,
        // vcsim's SET.<property> hack writes the property: proves OptionValue + xsi:type encoding.
        extraConfig: [{ key: "SET.guest.ipAddress", value: "192.0.2.7" }],
      })
    ).wait();
    const s = await c.vm(vm).summary();
    expect(s).toMatchObject({ numCPU: 4, memoryMB: 4096, ipAddress: "192.0.2.7", powerState: "poweredOn" });
    const bad = await rejection(c.vm(vm).reconfigure({ numCPUs: "8" as unknown as number }));
    expect(bad).toBeInstanceOf(ValidationError);
    expect((bad as ValidationError).field).toBe("ReconfigVM_Task.spec");
    const err = await rejection((await c.vm(vm).reconfigure({ guestId: "no-such-guest" })).wait());
    expect(isVimFault(err, "InvalidArgument")).toBe(true);
    expect((err as VimFault).fault.invalidProperty).toBe("configSpec.guestId");
  });

  it("relocates to another datastore; an unknown datastore is refused before sending", async () => {
    const vm = await createVM("relocate-1");
    const dss = await listDatastores(c);
    const before = (await c.vm(vm).summary()).datastores;
    const target = dss.find((d) => !before.some((b) => b.value === d.ref.value))!;
    await (await c.vm(vm).relocate({ datastore: target.ref })).wait();
    expect((await c.vm(vm).summary()).datastores).toEqual([target.ref]);
    const err = await rejection(c.vm(vm).relocate({ datastore: { type: "Datastore", value: "datastore-404" } }));
    expect(isVimFault(err, "ManagedObjectNotFound")).toBe(true);
  });

  it("destroy: powered on is InvalidPowerState; powered off removes it", async () => {
    const vm = await createVM("destroy-1");
    await (await c.vm(vm).powerOn()).wait();
    const err = await rejection((await c.vm(vm).destroy()).wait());
    expect(isVimFault(err, "InvalidPowerState")).toBe(true);
    expect((err as VimFault).fault).toMatchObject({ requestedState: "poweredOff", existingState: "poweredOn" });

    await (await c.vm(vm).powerOff()).wait();
    await (await c.vm(vm).destroy()).wait();
    expect(await c.searchIndex.findByInventoryPath("/DC0/vm/destroy-1")).toBeUndefined();
    expect(isVimFault(await rejection(c.vm(vm).summary()), "ManagedObjectNotFound")).toBe(true);
    expect(isVimFault(await rejection(c.vm(vm).powerOn()), "ManagedObjectNotFound")).toBe(true);
  });
});
