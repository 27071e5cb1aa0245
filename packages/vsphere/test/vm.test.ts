import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VimFault, isVimFault, type MoRef, type VimClient } from "@iaas/vsphere";
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

async function powerState(vm: MoRef): Promise<unknown> {
  return (await c.vm(vm).properties(["runtime.powerState"]))["runtime.powerState"];
}

describe("power operations", () => {
  it("powerOff → poweredOff; again → InvalidPowerState with the states; powerOn → poweredOn", async () => {
    const vm = await mustFind(c, "/DC0/vm/DC0_H0_VM1");
    const task = await c.vm(vm).powerOff();
    expect(task.ref.type).toBe("Task");
    expect(await task.wait({ timeoutMs: 10_000 })).toBeUndefined();
    expect(await powerState(vm)).toBe("poweredOff");

    const again = await c.vm(vm).powerOff();
    const err = await rejection(again.wait({ timeoutMs: 10_000 }));
    expect(err).toBeInstanceOf(VimFault);
    const f = err as VimFault;
    expect(f.faultType).toBe("InvalidPowerState");
    expect(f.is("InvalidState")).toBe(true);
    expect(f.fault.existingState).toBe("poweredOff");
    expect(f.fault.requestedState).toBe("poweredOff");
    expect(f.task).toEqual(again.ref);
    expect(f.method).toBe("PowerOffVM_Task");

    await (await c.vm(vm).powerOn()).wait({ timeoutMs: 10_000 });
    expect(await powerState(vm)).toBe("poweredOn");
    const info = await (await c.vm(vm).powerOn()).info();
    expect(info.state).toBe("error");
    expect(info.error?.fault._type).toBe("InvalidPowerState");
  });

  it("Task.wait: a finished task takes one read; the collector path (firstRead: false) gives the same answers", async () => {
    const vm = await mustFind(c, "/DC0/vm/DC0_H0_VM1");
    for (const firstRead of [true, false]) {
      const off = await c.vm(vm).powerOff();
      const before = c.stats.calls;
      expect(await off.wait({ timeoutMs: 10_000, firstRead })).toBeUndefined();
      // The simulator finishes tasks inside the call: one RetrievePropertiesEx, or the collector's four.
      expect(c.stats.calls - before).toBe(firstRead ? 1 : 4);
      const again = await c.vm(vm).powerOff();
      const err = await rejection(again.wait({ timeoutMs: 10_000, firstRead }));
      expect(isVimFault(err, "InvalidPowerState")).toBe(true);
      expect((err as VimFault).task).toEqual(again.ref);
      expect((err as VimFault).method).toBe("PowerOffVM_Task");
      await (await c.vm(vm).powerOn()).wait({ timeoutMs: 10_000, firstRead });
      expect(await powerState(vm)).toBe("poweredOn");
    }
  });

  it("suspend; suspending again is InvalidPowerState; powerOn resumes and reset keeps it on", async () => {
    const vm = await mustFind(c, "/DC0/vm/DC0_C0_RP0_VM0");
    await (await c.vm(vm).suspend()).wait();
    expect(await powerState(vm)).toBe("suspended");
    const err = await rejection((await c.vm(vm).suspend()).wait());
    expect(isVimFault(err, "InvalidPowerState")).toBe(true);
    await (await c.vm(vm).powerOn()).wait();
    await (await c.vm(vm).reset()).wait();
    expect(await powerState(vm)).toBe("poweredOn");
  });

  it("powerOn of a template is an immediate InvalidState fault (no task)", async () => {
    const tmpl = await mustFind(c, "/DC0/vm/tmpl-ubuntu-22.04");
    const err = await rejection(c.vm(tmpl).powerOn());
    expect(err).toBeInstanceOf(VimFault);
    expect((err as VimFault).faultType).toBe("InvalidState");
    expect((err as VimFault).method).toBe("PowerOnVM_Task");
    expect((err as VimFault).task).toBeUndefined();
  });

  it("rebootGuest surfaces MethodNotFound (vcsim 0.24 does not implement it)", async () => {
    const vm = await mustFind(c, "/DC0/vm/DC0_H0_VM0");
    const err = await rejection(c.vm(vm).rebootGuest());
    expect(isVimFault(err, "MethodNotFound")).toBe(true);
    expect((err as VimFault).is("InvalidRequest")).toBe(true);
  });

  it("shutdownGuest powers off; on a powered-off VM it is InvalidPowerState", async () => {
    const vm = await mustFind(c, "/DC0/vm/DC0_C0_RP0_VM1");
    await c.vm(vm).shutdownGuest();
    expect(await powerState(vm)).toBe("poweredOff");
    const err = await rejection(c.vm(vm).shutdownGuest());
    expect(isVimFault(err, "InvalidPowerState")).toBe(true);
  });

  it("a task on an object that is not there is ManagedObjectNotFound", async () => {
    const err = await rejection(c.vm({ type: "VirtualMachine", value: "vm-gone" }).powerOn());
    expect(isVimFault(err, "ManagedObjectNotFound")).toBe(true);
  });
});
