/**
 * VmIndex: a live copy of every VM's name, template flag and inventory path, fed by the property
 * collector. Checked against what vCenter answers to a listing, after changes, and across a
 * session that is terminated under it (the rebuild held back, to see the previous copy answer).
 * A mirror fed only by its change notifications (`subscribe`) must hold the very entries the
 * index holds after each of them.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitUntil } from "@iaas/testkit";
import { VmIndex, inventoryPath, refKey, type IndexedVm, type MoRef, type VimClient } from "@iaas/vsphere";
import { connect, mustFind, startVcsim, type Vcsim } from "./helpers.js";

let sim: Vcsim;
let c: VimClient;
let admin: VimClient;
let index: VmIndex;
/** While set, the first WaitForUpdatesEx of a build (version "") waits before it is sent. */
let gate: Promise<void> | undefined;
let releaseBuild: () => void = () => undefined;
let held = 0;
/** The index as its notifications tell it, and what they told that did not fit what the mirror held. */
const mirror = new Map<string, IndexedVm>();
const misfits: string[] = [];
let told = 0;

/** Seeds the mirror from `all()` and follows `subscribe` from then on (one turn: nothing is missed). */
function follow(idx: VmIndex): void {
  for (const v of idx.all()) mirror.set(refKey(v.ref), v);
  idx.subscribe((prev, next) => {
    told++;
    const key = refKey((next ?? prev)!.ref);
    if (prev && next && refKey(prev.ref) !== refKey(next.ref)) misfits.push(`${key}: prev and next are different VMs`);
    if (mirror.get(key) !== prev) misfits.push(`${key}: prev is not the entry the index held`);
    if (prev === next) misfits.push(`${key}: told a change that is none`);
    if (next) mirror.set(key, next);
    else mirror.delete(key);
  });
}

function expectMirrored(): void {
  expect(misfits).toEqual([]);
  expect(mirror.size).toBe(index.size);
  for (const v of index.all()) expect(mirror.get(refKey(v.ref)), v.name).toBe(v);
}

function holdBuild(): void {
  held = 0;
  gate = new Promise((r) => (releaseBuild = () => {
    gate = undefined;
    r();
  }));
}

beforeAll(async () => {
  sim = await startVcsim();
  const hook: typeof fetch = async (url, init) => {
    if (gate && String(init?.body).includes("<WaitForUpdatesEx") && String(init?.body).includes("<version></version>")) {
      held++;
      await gate;
    }
    return fetch(url, init);
  };
  c = await connect(sim, { fetch: hook });
  admin = await connect(sim);
  index = new VmIndex(c, { maxWaitSeconds: 2 });
  await index.start();
  follow(index);
});

afterAll(async () => {
  releaseBuild();
  await index?.stop();
  await c?.logout();
  await admin?.logout();
  await sim?.stop();
});

/** What a listing says, as name → refs, for comparison. */
async function listing(): Promise<Map<string, string[]>> {
  const all = await admin.retrieveContainer("VirtualMachine", ["name"]);
  const out = new Map<string, string[]>();
  for (const o of all) out.set(String(o.props.name), [...(out.get(String(o.props.name)) ?? []), o.obj.value].sort());
  return out;
}

function indexed(name: string): string[] {
  return index.lookup(name).map((v) => v.ref.value).sort();
}

async function rename(vm: MoRef, newName: string): Promise<void> {
  const task = await admin.invoke("Rename_Task", vm, [["newName", newName, "string"]], { returns: "MoRef" });
  await admin.task(task as MoRef).wait({ timeoutMs: 10_000 });
}

describe("VmIndex", () => {
  it("is live after start with every VM and template a listing has, and the same inventory paths", async () => {
    expect(index.live).toBe(true);
    const list = await listing();
    expect(index.size).toBe([...list.values()].flat().length);
    for (const [name, refs] of list) expect(indexed(name), name).toEqual(refs);
    for (const refs of list.values()) {
      for (const value of refs) {
        const ref = { type: "VirtualMachine", value };
        expect(index.pathOf(ref), value).toBe(await inventoryPath(admin, ref));
      }
    }
    const tmpl = await mustFind(admin, "/DC0/vm/tmpl-ubuntu-22.04");
    expect(index.get(tmpl)?.template).toBe(true);
    expect(index.lookup("DC0_H0_VM0")[0]?.template).toBe(false);
  });

  it("follows changes made by another session: a clone appears, a rename moves it, a destroy removes it", async () => {
    const src = await mustFind(admin, "/DC0/vm/DC0_H0_VM0");
    const folder = (await mustFind(admin, "/DC0/vm")) as MoRef;
    const clone = (await (await admin.vm(src).clone(folder, "idx-clone", { location: {}, template: false, powerOn: false })).wait({ timeoutMs: 10_000 })) as MoRef;
    await waitUntil("the clone in the index", () => indexed("idx-clone").includes(clone.value));
    expect(index.pathOf(clone)).toBe("/DC0/vm/idx-clone");

    await rename(clone, "idx-renamed");
    await waitUntil("the new name in the index", () => indexed("idx-renamed").includes(clone.value));
    expect(indexed("idx-clone")).toEqual([]);
    expect(index.pathOf(clone)).toBe("/DC0/vm/idx-renamed");

    await (await admin.vm(clone).destroy()).wait({ timeoutMs: 10_000 });
    await waitUntil("the VM gone from the index", () => indexed("idx-renamed").length === 0 && index.get(clone) === undefined);
    expect(index.live).toBe(true);
    expect(mirror.has(refKey(clone))).toBe(false);
    expectMirrored();
  });

  it("a terminated session: the previous copy answers during the rebuild, which then sweeps out what vCenter no longer has", async () => {
    const builds = index.stats.builds;
    const src = await mustFind(admin, "/DC0/vm/DC0_H0_VM0");
    const folder = await mustFind(admin, "/DC0/vm");
    const doomed = (await (await admin.vm(src).clone(folder, "idx-doomed", { location: {}, template: false, powerOn: false })).wait({ timeoutMs: 10_000 })) as MoRef;
    await waitUntil("the clone in the index", () => indexed("idx-doomed").includes(doomed.value));
    holdBuild();
    await admin.sessionManager.terminateSession([c.session!.key]);
    // The next call on the client meets NotAuthenticated and logs in again; the index notices the renewal.
    await c.currentTime();
    expect(c.stats.relogins).toBe(1);
    await waitUntil("the rebuild's first answer asked for", () => held > 0);
    // Changed in vCenter while the rebuild waits: the index still answers, from the previous copy.
    await (await admin.vm(doomed).destroy()).wait({ timeoutMs: 10_000 });
    await rename(src, "idx-after-renewal");
    expect(index.live).toBe(true);
    expect(indexed("idx-doomed")).toEqual([doomed.value]);
    expect(indexed("DC0_H0_VM0")).toEqual([src.value]);
    releaseBuild();
    await waitUntil("the index rebuilt", () => index.stats.builds > builds && indexed("idx-after-renewal").includes(src.value));
    expect(indexed("DC0_H0_VM0")).toEqual([]);
    expect(indexed("idx-doomed")).toEqual([]);
    expect(index.get(doomed)).toBeUndefined();
    expect(index.size).toBe([...(await listing()).values()].flat().length);
    // And the new session's feed follows changes again.
    await rename(src, "DC0_H0_VM0");
    await waitUntil("renamed back", () => indexed("DC0_H0_VM0").includes(src.value));
    expect(index.pathOf(src)).toBe("/DC0/vm/DC0_H0_VM0");
    expectMirrored();
  });

  it("tells every write-through: note (new, renamed), a custom value and the disks it brings, forget", async () => {
    const vm = await mustFind(admin, "/DC0/vm/DC0_H0_VM1");
    const before = index.get(vm)!;
    const folder = before.parent;
    const made: MoRef = { type: "VirtualMachine", value: "vm-noted-1" };
    const base = { template: false, parent: folder, powerState: "poweredOff", numCPU: 1, memoryMB: 32, diskKB: 0 };
    let n = told;
    index.note({ ref: made, name: "idx-noted", ...base });
    expect(told).toBe(n + 1);
    expectMirrored();
    n = told;
    index.note({ ref: made, name: "idx-noted-renamed", ...base });
    expect(told).toBe(n + 1);
    expect(mirror.get(refKey(made))?.name).toBe("idx-noted-renamed");
    expectMirrored();
    n = told;
    index.forget(made);
    expect(told).toBe(n + 1);
    expect(mirror.has(refKey(made))).toBe(false);
    expectMirrored();
    // A custom value on a VM whose disks the index has not read: the value at once, the disks after.
    expect(before.diskKB).toBe(0);
    const field = await admin.customFieldsManager.ensure("idx.test", "VirtualMachine");
    await admin.customFieldsManager.setField(vm, field.key, "x");
    n = told;
    index.noteCustomValue(vm, field.key, "x");
    expect(told).toBe(n + 1);
    expect(mirror.get(refKey(vm))?.customValues.get(field.key)).toBe("x");
    await waitUntil("the disks read", () => (index.get(vm)?.diskKB ?? 0) > 0);
    expect(mirror.get(refKey(vm))?.diskKB).toBe(index.get(vm)!.diskKB);
    expectMirrored();
  });

  it("stop ends the feed: not live, and a later start is not needed by anyone", async () => {
    const other = new VmIndex(c, { maxWaitSeconds: 30 });
    await other.start();
    expect(other.live).toBe(true);
    // stop() aborts the long poll in flight rather than waiting out its 30 s.
    await other.stop();
    expect(other.live).toBe(false);
  });
});
