import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TimeoutError, VmProps, isVimFault, type VimClient } from "@iaas/vsphere";
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

const isOff = (p: Record<string, unknown>): boolean => p[VmProps.powerState] === "poweredOff";

describe("PropertyCollector.waitFor", () => {
  it("resolves once the property reaches the awaited value, changed by another call meanwhile", async () => {
    const vm = await mustFind(c, "/DC0/vm/DC0_H0_VM0");
    expect((await c.vm(vm).properties([VmProps.powerState]))[VmProps.powerState]).toBe("poweredOn");
    const seen: unknown[] = [];
    const waiting = c.propertyCollector.waitFor(
      vm,
      [VmProps.powerState],
      (p) => {
        seen.push(p[VmProps.powerState]);
        return isOff(p);
      },
      Date.now() + 20_000,
    );
    // The first update is the current value: the wait has seen the VM on before it is powered off.
    await expect.poll(() => seen.length, { timeout: 10_000 }).toBeGreaterThan(0);
    await (await c.vm(vm).powerOff()).wait({ timeoutMs: 10_000 });
    expect(await waiting).toEqual({ [VmProps.powerState]: "poweredOff" });
    expect(seen[0]).toBe("poweredOn");
    expect(seen.at(-1)).toBe("poweredOff");
  });

  it("resolves at once when the value already holds", async () => {
    const vm = await mustFind(c, "/DC0/vm/DC0_H0_VM0");
    const props = await c.propertyCollector.waitFor(vm, [VmProps.powerState, VmProps.name], isOff, Date.now() + 20_000);
    expect(props).toEqual({ [VmProps.powerState]: "poweredOff", [VmProps.name]: "DC0_H0_VM0" });
  });

  it("gives up at the deadline with a TimeoutError (a custom one when given)", async () => {
    const vm = await mustFind(c, "/DC0/vm/DC0_H0_VM1");
    const err = await rejection(c.propertyCollector.waitFor(vm, [VmProps.powerState], isOff, Date.now() + 1_500));
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).message).toContain(`${vm.value}.${VmProps.powerState}`);

    const mine = new Error("not off in time");
    const custom = await rejection(c.propertyCollector.waitFor(vm, [VmProps.powerState], isOff, Date.now() + 1_000, { timeoutError: () => mine }));
    expect(custom).toBe(mine);
  });

  it("ends with the error `done` throws, and leaves no collector behind", async () => {
    const vm = await mustFind(c, "/DC0/vm/DC0_H0_VM1");
    const boom = new Error("refused");
    const before = c.stats.calls;
    const err = await rejection(
      c.propertyCollector.waitFor(vm, [VmProps.powerState], () => {
        throw boom;
      }, Date.now() + 20_000),
    );
    expect(err).toBe(boom);
    // CreatePropertyCollector, CreateFilter, WaitForUpdatesEx, DestroyPropertyCollector.
    expect(c.stats.calls - before).toBe(4);
  });

  it("an object that does not exist is its fault, not a wait until the deadline", async () => {
    const err = await rejection(
      c.propertyCollector.waitFor({ type: "VirtualMachine", value: "vm-does-not-exist" }, [VmProps.powerState], isOff, Date.now() + 30_000),
    );
    expect(isVimFault(err, "ManagedObjectNotFound")).toBe(true);
  });
});
