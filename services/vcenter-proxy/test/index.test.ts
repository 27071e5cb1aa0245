/**
 * The proxy with its live inventory index: fewer SOAP calls per command, and an index that is
 * behind vCenter (its feed held back here) never answers for a VM that is gone or renamed.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "@iaas/runtime";
import { VimClient, type MoRef } from "@iaas/vsphere";
import { startVcsim, waitUntil, type Vcsim } from "@iaas/testkit";
import { Vcenter } from "@iaas/vcenter-proxy";
import { failure } from "./helpers.js";

const log = createLogger("test", "silent");

let sim: Vcsim;
let admin: VimClient;
let client: VimClient;
let plain: VimClient;
let vc: Vcenter;
let listing: Vcenter;
/** While set, answers to the index's long polls are held back: the index falls behind vCenter. */
let gate: Promise<void> | undefined;
let release: () => void = () => undefined;

function holdFeed(): void {
  gate = new Promise((r) => (release = () => {
    gate = undefined;
    r();
  }));
}

beforeAll(async () => {
  sim = await startVcsim();
  const creds = { url: sim.url, username: sim.username, password: sim.password };
  const hook: typeof fetch = async (url, init) => {
    const res = await fetch(url, init);
    if (gate && String(init?.body).includes("<WaitForUpdatesEx")) await gate;
    return res;
  };
  [admin, client, plain] = await Promise.all([VimClient.connect(creds), VimClient.connect({ ...creds, fetch: hook }), VimClient.connect(creds)]);
  vc = new Vcenter("default", client, log, { liveIndex: true });
  await vc.index!.start();
  listing = new Vcenter("default", plain, log);
  // The keys of the custom attributes iaas.owner and iaas.team are read (and the fields defined)
  // once per process, before the first VM read: not part of the calls counted below.
  await Promise.all([vc.fields(), listing.fields()]);
});

afterAll(async () => {
  release();
  await vc?.close();
  await Promise.all([client?.logout(), plain?.logout(), admin?.logout()]);
  await sim?.stop();
});


async function rename(vm: MoRef, name: string): Promise<void> {
  const task = await admin.invoke("Rename_Task", vm, [["newName", name, "string"]], { returns: "MoRef" });
  await admin.task(task as MoRef).wait({ timeoutMs: 10_000 });
}

/**
 * The SOAP calls `fn` makes on `c`, once the client is quiet: the index's feed shares the proxy's
 * client, and its answer to a change the previous test made (a new long poll, a read of disks)
 * would otherwise be counted too (a loaded machine: seen once).
 */
async function calls<T>(c: VimClient, fn: () => Promise<T>): Promise<[T, number]> {
  for (let seen = -1; seen !== c.stats.calls; ) {
    seen = c.stats.calls;
    await sleep(300);
  }
  const before = c.stats.calls;
  const out = await fn();
  return [out, c.stats.calls - before];
}

describe("vcenter-proxy with the live inventory index", () => {
  it("power off/on by name: the task, then its state and the VM in one read (2 SOAP calls, as the bare task and its wait); by listing it takes more", async () => {
    const [off, n] = await calls(client, () => vc.power("DC0_H0_VM0", "off", 10_000));
    expect(off).toMatchObject({ name: "DC0_H0_VM0", path: "/DC0/vm/DC0_H0_VM0", powerState: "poweredOff" });
    expect(n).toBe(2);
    const [on, m] = await calls(plain, () => listing.power("DC0_H0_VM0", "on", 10_000));
    expect(on).toEqual({ ...off, powerState: "poweredOn" });
    expect(m).toBeGreaterThan(n);
  });

  it("vm-get by name is one read; the same answer as a listing gives", async () => {
    const [a, n] = await calls(client, () => vc.getVm("DC0_H0_VM1"));
    expect(n).toBe(1);
    expect(a).toEqual(await listing.getVm("DC0_H0_VM1"));
  });

  it("a VM renamed behind the index's back: the old name is not found, the new one is (from vCenter)", async () => {
    const ref = (await vc.findVm("DC0_C0_RP0_VM0")).ref;
    holdFeed();
    await rename(ref, "idx-moved-away");
    expect(vc.index!.lookup("DC0_C0_RP0_VM0").map((v) => v.ref.value)).toEqual([ref.value]);
    expect((await failure(vc.getVm("DC0_C0_RP0_VM0"))).code).toBe("IAAS_VM_NOT_FOUND");
    expect((await failure(vc.infoOf("DC0_C0_RP0_VM0"))).code).toBe("IAAS_VM_NOT_FOUND");
    expect((await failure(vc.power("DC0_C0_RP0_VM0", "suspend", 10_000))).code).toBe("IAAS_VM_NOT_FOUND");
    expect(await vc.getVm("idx-moved-away")).toMatchObject({ moref: ref.value, powerState: "poweredOn" });
    release();
    await waitUntil("the index caught up", () => vc.index!.lookup("idx-moved-away").length === 1);
    await rename(ref, "DC0_C0_RP0_VM0");
    await waitUntil("renamed back", () => vc.index!.lookup("DC0_C0_RP0_VM0").length === 1);
  });

  it("a VM deleted behind the index's back: power on by its name is not found, and nothing else is touched", async () => {
    const src = (await vc.findVm("DC0_H0_VM1")).ref;
    const folder = (await admin.searchIndex.findByInventoryPath("/DC0/vm"))!;
    const clone = (await (await admin.vm(src).clone(folder, "idx-doomed", { location: {}, template: false, powerOn: false })).wait({ timeoutMs: 10_000 })) as MoRef;
    await waitUntil("the clone in the index", () => vc.index!.lookup("idx-doomed").length === 1);
    holdFeed();
    await (await admin.vm(clone).destroy()).wait({ timeoutMs: 10_000 });
    expect(vc.index!.lookup("idx-doomed")).toHaveLength(1);
    expect((await failure(vc.power("idx-doomed", "on", 10_000))).code).toBe("IAAS_VM_NOT_FOUND");
    expect((await failure(vc.getVm("idx-doomed"))).code).toBe("IAAS_VM_NOT_FOUND");
    release();
    await waitUntil("the index caught up", () => vc.index!.lookup("idx-doomed").length === 0);
  });

  it("a VM created a moment ago and not yet in the index is found in vCenter", async () => {
    const src = (await vc.findVm("DC0_H0_VM1")).ref;
    const folder = (await admin.searchIndex.findByInventoryPath("/DC0/vm"))!;
    holdFeed();
    const clone = (await (await admin.vm(src).clone(folder, "idx-fresh", { location: {}, template: false, powerOn: false })).wait({ timeoutMs: 10_000 })) as MoRef;
    expect(vc.index!.lookup("idx-fresh")).toHaveLength(0);
    expect(await vc.power("idx-fresh", "on", 10_000)).toMatchObject({ moref: clone.value, powerState: "poweredOn", path: "/DC0/vm/idx-fresh" });
    release();
  });

  it("list from the index's list view follows vCenter: after a clone, a rename, an owner and team, a power change and a destroy, the same answers as a list read from vCenter", async () => {
    const queries = [
      { limit: 5 },
      { limit: 1000, includeTemplates: true },
      { glob: "idx-l*", limit: 20 },
      { glob: "IDX-L?ST*", limit: 20 },
      { glob: "*-listed*", limit: 20 },
      { glob: "dc0_h0*", limit: 3 },
      { owner: "ULIST01", limit: 20 },
      { scope: { owner: "UNOBODY1", teams: ["team-list"] }, limit: 20 },
      { scope: { owner: "ULIST01", teams: [] }, glob: "idx*", limit: 0 },
    ];
    const same = async (what: string) => {
      const want = JSON.stringify(await Promise.all(queries.map((q) => listing.list(q))));
      await waitUntil(`the index's lists ${what}`, async () => JSON.stringify(await Promise.all(queries.map((q) => vc.list(q)))) === want);
    };
    const src = (await vc.findVm("DC0_H0_VM1")).ref;
    const folder = (await admin.searchIndex.findByInventoryPath("/DC0/vm"))!;
    const clone = (await (await admin.vm(src).clone(folder, "idx-listed", { location: {}, template: false, powerOn: false })).wait({ timeoutMs: 10_000 })) as MoRef;
    await same("with the clone");
    await rename(clone, "IDX-list-renamed");
    await same("after the rename");
    await vc.setOwner("IDX-list-renamed", { owner: "ULIST01", team: "team-list" });
    await same("with its owner and team");
    expect((await vc.list({ owner: "ULIST01", limit: 20 })).vms.map((v) => v.name)).toEqual(["IDX-list-renamed"]);
    await vc.power("IDX-list-renamed", "on", 10_000);
    await same("after its power on");
    await vc.power("IDX-list-renamed", "off", 10_000);
    await same("after its power off");
    await (await admin.vm(clone).destroy()).wait({ timeoutMs: 10_000 });
    await same("without it");
    expect((await vc.list({ glob: "idx-l*", limit: 20 })).total).toBe(0);
  });

  it("two VMs of one name: ambiguous, with both paths, from the index", async () => {
    const src = (await vc.findVm("DC0_H0_VM1")).ref;
    const dc = (await admin.searchIndex.findByInventoryPath("/DC0/vm"))!;
    const sub = (await admin.invoke("CreateFolder", dc, [["name", "idx-sub", "string"]], { returns: "MoRef" })) as MoRef;
    await (await admin.vm(src).clone(sub, "DC0_H0_VM1", { location: {}, template: false, powerOn: false })).wait({ timeoutMs: 10_000 });
    await waitUntil("both in the index", () => vc.index!.lookup("DC0_H0_VM1").length === 2);
    const err = await failure(vc.getVm("DC0_H0_VM1"));
    expect(err.code).toBe("IAAS_VM_AMBIGUOUS");
    expect(err.message).toContain("`/DC0/vm/DC0_H0_VM1`");
    expect(err.message).toContain("`/DC0/vm/idx-sub/DC0_H0_VM1`");
    expect(await vc.getVm("/DC0/vm/idx-sub/DC0_H0_VM1")).toMatchObject({ path: "/DC0/vm/idx-sub/DC0_H0_VM1" });
  });
});
