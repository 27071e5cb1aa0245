import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VimFault, VmProps, parseCustomValues, type VimClient } from "@iaas/vsphere";
import { connect, mustFind, rejection, startVcsim, type Vcsim } from "./helpers.js";

let sim: Vcsim;
let c: VimClient;
let other: VimClient;

beforeAll(async () => {
  sim = await startVcsim();
  [c, other] = await Promise.all([connect(sim), connect(sim)]);
});

afterAll(async () => {
  await Promise.all([c?.logout(), other?.logout()]);
  await sim?.stop();
});

describe("CustomFieldsManager", () => {
  it("AddCustomFieldDef defines a field for VirtualMachine; a second one of that name is DuplicateName; field lists it", async () => {
    const def = await c.customFieldsManager.addCustomFieldDef("cf.one", "VirtualMachine");
    expect(def).toMatchObject({ name: "cf.one", managedObjectType: "VirtualMachine" });
    expect(Number.isInteger(def.key)).toBe(true);
    const dup = await rejection(c.customFieldsManager.addCustomFieldDef("cf.one", "VirtualMachine"));
    expect(dup).toBeInstanceOf(VimFault);
    expect((dup as VimFault).faultType).toBe("DuplicateName");
    expect((await other.customFieldsManager.field()).filter((d) => d.name === "cf.one")).toEqual([def]);
  });

  it("ensure finds a definition, adds a missing one, and two sessions racing end with one definition", async () => {
    const [a, b] = await Promise.all([c.customFieldsManager.ensure("cf.race", "VirtualMachine"), other.customFieldsManager.ensure("cf.race", "VirtualMachine")]);
    expect(a).toEqual(b);
    expect((await c.customFieldsManager.field()).filter((d) => d.name === "cf.race")).toHaveLength(1);
    expect(await c.customFieldsManager.ensure("cf.race", "VirtualMachine")).toEqual(a);
  });

  it("SetField sets a value on a VM; the simulator appends, and the last value per key counts", async () => {
    const def = await c.customFieldsManager.ensure("cf.value", "VirtualMachine");
    const vm = await mustFind(c, "/DC0/vm/DC0_H0_VM0");
    await c.customFieldsManager.setField(vm, def.key, "first");
    await c.customFieldsManager.setField(vm, def.key, "second");
    const [r] = await other.retrieve([vm], [VmProps.customValue]);
    expect(parseCustomValues(r!.props[VmProps.customValue]).get(def.key)).toBe("second");
  });

  it("SetField with a key that is no field: InvalidArgument", async () => {
    const vm = await mustFind(c, "/DC0/vm/DC0_H0_VM0");
    const err = await rejection(c.customFieldsManager.setField(vm, 987654, "x"));
    expect((err as VimFault).faultType).toBe("InvalidArgument");
  });
});

describe("parseCustomValues", () => {
  it("reads key/value pairs, numeric text keys too, the last value of a key winning; junk is skipped", () => {
    expect([...parseCustomValues([{ _type: "CustomFieldStringValue", key: 1, value: "a" }, { key: "2", value: "b" }, { key: 1, value: "c" }, "junk", { key: "x", value: "y" }])]).toEqual([
      [1, "c"],
      [2, "b"],
    ]);
    expect(parseCustomValues({ key: 3, value: "" })).toEqual(new Map([[3, ""]]));
    expect(parseCustomValues(undefined)).toEqual(new Map());
  });
});
