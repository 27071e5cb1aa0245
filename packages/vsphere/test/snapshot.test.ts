import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VirtualMachine, VirtualMachineSnapshot, VmProps, isVimFault, type VimClient } from "@iaas/vsphere";
import { connect, mustFind, rejection, startVcsim, type Vcsim } from "./helpers.js";

let sim: Vcsim;
let c: VimClient;
let vm: VirtualMachine;

beforeAll(async () => {
  sim = await startVcsim();
  c = await connect(sim);
  vm = new VirtualMachine(c, await mustFind(c, "/DC0/vm/DC0_H0_VM1"));
});

afterAll(async () => {
  await c?.logout();
  await sim?.stop();
});

describe("snapshots (CreateSnapshot_Task, RevertToSnapshot_Task, RemoveSnapshot_Task, the snapshot tree)", () => {
  it("a VM without snapshots has an empty tree, and reverting to the current snapshot is NotFound", async () => {
    expect(await vm.snapshotTree()).toEqual({ snapshots: [], current: undefined });
    const err = await rejection(vm.revertToCurrentSnapshot());
    expect(isVimFault(err, "NotFound")).toBe(true);
  });

  it("makes snapshots without memory, reads them as a tree, reverts, and removes one keeping its children", async () => {
    const a = (await (await vm.createSnapshot("a", { description: "first", memory: false, quiesce: false })).wait()) as { type: string; value: string };
    expect(a.type).toBe("VirtualMachineSnapshot");
    const b = (await (await vm.createSnapshot("b", { memory: false, quiesce: false })).wait()) as { type: string; value: string };
    let tree = await vm.snapshotTree();
    // b was taken while a was current: a child of a.
    expect(tree.snapshots.map((s) => ({ name: s.name, parent: s.parent?.value, depth: s.depth, description: s.description, quiesced: s.quiesced }))).toEqual([
      { name: "a", parent: undefined, depth: 0, description: "first", quiesced: false },
      { name: "b", parent: a.value, depth: 1, description: "", quiesced: false },
    ]);
    expect(tree.current).toEqual(b);
    expect(Date.parse(tree.snapshots[0]!.createTime)).toBeGreaterThan(Date.now() - 600_000);

    await (await new VirtualMachineSnapshot(c, a).revert()).wait();
    tree = await vm.snapshotTree();
    expect(tree.current).toEqual(a);
    await (await vm.revertToCurrentSnapshot()).wait();

    // c is a second child of a (a is current now).
    const cRef = (await (await vm.createSnapshot("c", { memory: false, quiesce: false })).wait()) as { type: string; value: string };
    await (await new VirtualMachineSnapshot(c, a).remove(false)).wait();
    tree = await vm.snapshotTree();
    expect(tree.snapshots.map((s) => [s.name, s.depth, s.parent])).toEqual([
      ["b", 0, undefined],
      ["c", 0, undefined],
    ]);
    expect(tree.current).toEqual(cRef);

    await (await new VirtualMachineSnapshot(c, b).remove(false)).wait();
    await (await new VirtualMachineSnapshot(c, cRef).remove(false)).wait();
    expect(await vm.snapshotTree()).toEqual({ snapshots: [], current: undefined });
    // The property is unset again, as before the first snapshot.
    expect((await vm.properties([VmProps.name, VmProps.snapshot]))[VmProps.snapshot]).toBeUndefined();
  });

  it("removing a snapshot that is gone is ManagedObjectNotFound; an empty name is refused before the call", async () => {
    const s = (await (await vm.createSnapshot("gone", { memory: false, quiesce: false })).wait()) as { type: string; value: string };
    await (await new VirtualMachineSnapshot(c, s).remove(false)).wait();
    const err = await rejection(new VirtualMachineSnapshot(c, s).remove(false));
    expect(isVimFault(err, "ManagedObjectNotFound")).toBe(true);
    await expect(() => vm.createSnapshot("", { memory: false, quiesce: false })).toThrow(/snapshot name is required/);
  });
});
