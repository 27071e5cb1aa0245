import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NoticeSchema, ProxyEndpoints, Streams, Subjects, type Notice } from "@iaas/contracts";
import { createLogger, jetstreamFor, openBucket, requestJson } from "@iaas/runtime";
import { SnapshotSweeper } from "@iaas/vm-lifecycle";
import { VirtualMachine, type MoRef } from "@iaas/vsphere";
import { waitUntil } from "@iaas/testkit";
import { startSystem, type System } from "./harness.js";
import { actor, buttonsOf, click, finalPost, idOf, natsId, now, publishCommand, textOf } from "./helpers.js";

/** The default policy with another snapshot rule, and no rate limit in the way of many commands. */
function policyWith(snapshots: string): string {
  const yaml = readFileSync(new URL("../../deploy/policy.example.yaml", import.meta.url), "utf8");
  const out = yaml.replace(/perUserPerMinute: \d+/, "perUserPerMinute: 10000").replace(/snapshots:\n  maxPerVm: 3\n  maxAge: 7d/, `snapshots:\n${snapshots}`);
  if (!out.includes(snapshots)) throw new Error("deploy/policy.example.yaml has no snapshots section to replace");
  return out;
}

/** The VM's snapshots as vCenter has them, read by the test's own session. */
async function treeOf(sys: System, vm: string) {
  const ref = await sys.observer.searchIndex.findByInventoryPath(`/DC0/vm/${vm}`);
  if (!ref) throw new Error(`no VM ${vm}`);
  return new VirtualMachine(sys.observer, ref).snapshotTree();
}

const names = async (sys: System, vm: string) => (await treeOf(sys, vm)).snapshots.map((s) => s.name);

describe("snapshots, end to end: create, list, revert after Confirm, delete, the limit, scope", () => {
  let sys: System;
  beforeAll(async () => {
    sys = await startSystem({ policyYaml: policyWith("  maxPerVm: 2\n  maxAge: 7d") });
    await sys.adopt("DC0_H0_VM0", "UALICE");
    await sys.adopt("DC0_H0_VM1", "UBOB");
  }, 120_000);
  afterAll(async () => {
    await sys?.stop();
  });

  const ack = async (text: string, user: string) => {
    const r = await sys.slash(text, { user_id: user });
    expect(r.status).toBe(200);
    return { ...r, text: textOf(r.json) };
  };

  it("create (named and by the time), list, info's count; the snapshot is marked as iaas's and quiesced (Tools run in the demo VMs)", async () => {
    const a = await ack("snapshot create DC0_H0_VM0 before upgrade", "UALICE");
    expect(a.text).toMatch(/^Taking a snapshot `before upgrade` of `DC0_H0_VM0`… \(request `r-/);
    expect(await finalPost(sys, a.responseUrl)).toMatch(/^:white_check_mark: Took the snapshot `before upgrade` of `DC0_H0_VM0` \(quiesced; 1 of 2 allowed\)/);
    const b = await ack("snapshot create DC0_H0_VM0", "UALICE");
    expect(await finalPost(sys, b.responseUrl)).toMatch(/^:white_check_mark: Took the snapshot `iaas-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ` of `DC0_H0_VM0`/);

    const tree = await treeOf(sys, "DC0_H0_VM0");
    expect(tree.snapshots.map((s) => s.name)).toEqual(["before upgrade", expect.stringMatching(/^iaas-/)]);
    expect(tree.snapshots[0]!.description).toBe(`Made by iaas for <@UALICE> (request ${idOf(a.json)})`);
    expect(tree.current?.value).toBe(tree.snapshots[1]!.ref.value);

    const list = await ack("snapshot list DC0_H0_VM0", "UALICE");
    expect(list.text).toMatch(/^DC0_H0_VM0 has 2 snapshots \(the policy allows 2\):\nbefore upgrade: .* UTC, by iaas for <@UALICE>\n▶ iaas-.*, after before upgrade \(current\)$/);
    const info = await ack("info DC0_H0_VM0", "UALICE");
    expect(info.text).toContain(", 2 snapshots");
  });

  it("a create over maxPerVm (every snapshot counts) and a name already on the VM are refused", async () => {
    const over = await ack("snapshot create DC0_H0_VM0 third", "UALICE");
    expect(await finalPost(sys, over.responseUrl)).toMatch(/^:x: `\/iaas snapshot create DC0_H0_VM0 third` failed: `DC0_H0_VM0` has 2 snapshots, and the policy allows 2 per VM\. Delete one first/);
    expect(await names(sys, "DC0_H0_VM0")).toHaveLength(2);

    // A name already there is refused even below the limit: on UBOB's VM, with one made outside iaas.
    const ref = (await sys.observer.searchIndex.findByInventoryPath("/DC0/vm/DC0_H0_VM1")) as MoRef;
    await (await new VirtualMachine(sys.observer, ref).createSnapshot("nightly", { memory: false, quiesce: false })).wait();
    const dup = await ack("snapshot create DC0_H0_VM1 nightly", "UBOB");
    expect(await finalPost(sys, dup.responseUrl)).toMatch(/failed: `DC0_H0_VM1` already has a snapshot named `nightly`/);
    expect(await names(sys, "DC0_H0_VM1")).toEqual(["nightly"]);
  });

  it("another user is refused in the ack for every form (scope), and on NATS as well", async () => {
    for (const [text, words] of [
      ["snapshot create DC0_H0_VM0", "snapshot it"],
      ["snapshot revert DC0_H0_VM0", "revert it to a snapshot"],
      ["snapshot delete DC0_H0_VM0 before upgrade", "delete its snapshots"],
      ["snapshot list DC0_H0_VM0", "see its snapshots"],
    ] as const) {
      const r = await ack(text, "UBOB");
      expect(r.text, text).toBe(`:warning: \`DC0_H0_VM0\` belongs to <@UALICE>; you may not ${words}: ask them or an IT admin. (request \`${idOf(r.json)}\`)`);
      expect(buttonsOf(r.json)).toEqual([]);
    }
    const viaNats = await publishCommand(sys, { id: natsId("snap"), actor: actor("UBOB"), issuedAt: now(), area: "snapshot", action: "delete", vm: "DC0_H0_VM0", name: "before upgrade" });
    expect(viaNats.status === "failed" && viaNats.error.code).toBe("IAAS_NOT_ALLOWED");
    expect(await names(sys, "DC0_H0_VM0")).toHaveLength(2);
  });

  it("delete removes one snapshot and keeps its children; an unknown name is refused", async () => {
    // Not the current snapshot: the simulator's RemoveSnapshot_Task crashes on a current root
    // snapshot that has children (vCenter makes no snapshot current then).
    const unknown = await ack("snapshot delete DC0_H0_VM0 nosuch", "UALICE");
    expect(await finalPost(sys, unknown.responseUrl)).toMatch(/^:x: `\/iaas snapshot delete DC0_H0_VM0 nosuch` failed: `DC0_H0_VM0` has no snapshot named `nosuch`/);
    const d = await ack("snapshot delete DC0_H0_VM0 before upgrade", "UALICE");
    expect(await finalPost(sys, d.responseUrl)).toMatch(/^:white_check_mark: Deleted the snapshot `before upgrade` of `DC0_H0_VM0`; its child snapshots, if any, are kept\./);
    // Its child (the one named by the time) is still there, now a root.
    const tree = await treeOf(sys, "DC0_H0_VM0");
    expect(tree.snapshots.map((s) => [s.name, s.depth])).toEqual([[expect.stringMatching(/^iaas-/), 0]]);
  });

  it("revert asks Confirm / Cancel first; after Confirm the snapshot is the current one", async () => {
    const next = await ack("snapshot create DC0_H0_VM0 second", "UALICE");
    expect(await finalPost(sys, next.responseUrl)).toMatch(/^:white_check_mark: Took the snapshot `second`/);
    const before = await treeOf(sys, "DC0_H0_VM0");
    const first = before.snapshots[0]!;
    expect(first.name).toMatch(/^iaas-/);
    expect(before.current?.value).not.toBe(first.ref.value);
    const asked = await ack(`snapshot revert DC0_H0_VM0 ${first.name}`, "UALICE");
    expect(asked.text).toMatch(new RegExp(`^Revert \`DC0_H0_VM0\` to the snapshot \`${first.name}\`\\? What changed in the VM since that snapshot is lost\\.`));
    const [confirm] = buttonsOf(asked.json);
    const c = await click(sys, { userId: "UALICE", action: "confirm", value: confirm!.value });
    expect(await finalPost(sys, c.responseUrl)).toMatch(new RegExp(`^:white_check_mark: Reverted \`DC0_H0_VM0\` to the snapshot \`${first.name}\`; it is the current snapshot now\\.`));
    const after = await treeOf(sys, "DC0_H0_VM0");
    expect(after.current?.value).toBe(first.ref.value);
  });

  it("a redelivered create (the same request id) makes no second snapshot", async () => {
    // On UBOB's VM, which has room for one more snapshot.
    const cmd = { id: natsId("snap"), actor: actor("UBOB"), issuedAt: now(), area: "snapshot" as const, action: "create" as const, vm: "DC0_H0_VM1", name: "again" };
    const first = await publishCommand(sys, cmd);
    expect(first.status === "failed" ? first.error : first.status).toBe("succeeded");
    // What a second delivery does: the proxy's create with the same request id.
    const second = await requestJson(sys.nc, ProxyEndpoints.snapshotCreate, { vm: "DC0_H0_VM1", name: "again", madeBy: { owner: "UBOB", requestId: cmd.id }, limit: 2 }, { timeoutMs: 10_000 });
    expect(second.created).toBe(false);
    expect(await names(sys, "DC0_H0_VM1")).toEqual(["nightly", "again"]);
  });
});

describe("the snapshot retention sweep", () => {
  let sys: System;
  beforeAll(async () => {
    sys = await startSystem({ policyYaml: policyWith("  maxPerVm: 5\n  maxAge: 1s") });
    await sys.adopt("DC0_H0_VM0", "UALICE");
  }, 120_000);
  afterAll(async () => {
    await sys?.stop();
  });

  async function sweptNotices(): Promise<Notice[]> {
    const { jsm } = await jetstreamFor(sys.nc);
    const info = await jsm.streams.info(Streams.notices.name);
    const out: Notice[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(Streams.notices.name, { seq }).catch(() => null);
      if (m && m.subject === `${Subjects.notify("snapshot")}.swept`) out.push(NoticeSchema.parse(m.json()));
    }
    return out;
  }

  const sweeper = async (instance: string) =>
    new SnapshotSweeper({
      nc: sys.nc,
      jet: await jetstreamFor(sys.nc),
      kv: await openBucket(sys.nc, "snapshotSweep"),
      policy: sys.policy,
      log: createLogger("e2e-sweep", "silent"),
      intervalMs: 200,
      lookupTimeoutMs: 10_000,
      taskTimeoutMs: 30_000,
      instance,
    });

  it("two sweepers delete each old iaas snapshot once, keep the one made outside iaas, and tell the owner", async () => {
    for (const name of ["old-1", "old-2"]) {
      const r = await sys.slash(`snapshot create DC0_H0_VM0 ${name}`, { user_id: "UALICE" });
      expect(await finalPost(sys, r.responseUrl)).toMatch(/^:white_check_mark: Took the snapshot/);
    }
    const ref = (await sys.observer.searchIndex.findByInventoryPath("/DC0/vm/DC0_H0_VM0")) as MoRef;
    await (await new VirtualMachine(sys.observer, ref).createSnapshot("by hand", { description: "made in the vSphere Client", memory: false, quiesce: false })).wait();
    // Older than maxAge (1 s): vCenter's clock is the one the sweep compares with.
    await waitUntil("the snapshots to be older than maxAge", async () => (await treeOf(sys, "DC0_H0_VM0")).snapshots.every((s) => Date.now() - Date.parse(s.createTime) > 1500) || undefined, 10_000);

    const [a, b] = await Promise.all([sweeper("a"), sweeper("b")]);
    await Promise.all([a.round(), b.round(), a.round(), b.round()]);
    expect(a.stats.claimed + b.stats.claimed).toBe(2);
    expect(a.stats.deleted + b.stats.deleted).toBe(2);
    expect(await names(sys, "DC0_H0_VM0")).toEqual(["by hand"]);

    const notices = await sweptNotices();
    expect(notices.map((n) => [n.to, n.vm, n.text.replace(/on .* UTC/, "on <time> UTC")]).sort()).toEqual([
      ["UALICE", "DC0_H0_VM0", "Deleted the snapshot `old-1` of `DC0_H0_VM0`: iaas took it for you on <time> UTC, and the policy keeps snapshots for 1 second."],
      ["UALICE", "DC0_H0_VM0", "Deleted the snapshot `old-2` of `DC0_H0_VM0`: iaas took it for you on <time> UTC, and the policy keeps snapshots for 1 second."],
    ]);

    // Later rounds find nothing more to do, and never touch the hand-made snapshot.
    await Promise.all([a.round(), b.round()]);
    expect(a.stats.claimed + b.stats.claimed).toBe(2);
    expect(await names(sys, "DC0_H0_VM0")).toEqual(["by hand"]);
  });

  it("a claim held by a live replica is left alone; one left by a replica that died is taken over", async () => {
    for (const name of ["held", "orphaned"]) {
      const r = await sys.slash(`snapshot create DC0_H0_VM0 ${name}`, { user_id: "UALICE" });
      expect(await finalPost(sys, r.responseUrl)).toMatch(/^:white_check_mark: Took the snapshot/);
    }
    const tree = await treeOf(sys, "DC0_H0_VM0");
    const ref = (await sys.observer.searchIndex.findByInventoryPath("/DC0/vm/DC0_H0_VM0"))!;
    const keyOf = (name: string) => `${ref.value}.${tree.snapshots.find((x) => x.name === name)!.ref.value}`;
    const kv = await openBucket(sys.nc, "snapshotSweep");
    const claim = (at: number) => JSON.stringify({ status: "claimed", by: "gone:1", at: new Date(at).toISOString(), vm: "DC0_H0_VM0", snapshot: "x", owner: "UALICE" });
    await kv.create(keyOf("held"), claim(Date.now()));
    // Older than a removal may take (the sweeper's task deadline, 30 s here, and a minute).
    await kv.create(keyOf("orphaned"), claim(Date.now() - 10 * 60_000));
    await waitUntil("the snapshots to be older than maxAge", async () => (await treeOf(sys, "DC0_H0_VM0")).snapshots.every((x) => Date.now() - Date.parse(x.createTime) > 1500) || undefined, 10_000);

    const s = await sweeper("c");
    await s.round();
    expect(s.stats).toMatchObject({ claimed: 1, deleted: 1, failed: 0 });
    expect(await names(sys, "DC0_H0_VM0")).toEqual(["by hand", "held"]);
    expect((await kv.get(keyOf("orphaned")))?.json()).toMatchObject({ status: "done", by: "c", removed: true });
    // The live claim's holder finishes (or its claim lapses): until then nobody else deletes it.
    await kv.delete(keyOf("held"));
    await s.round();
    expect(await names(sys, "DC0_H0_VM0")).toEqual(["by hand"]);
  });

  it("on its timer (start, as vm-lifecycle starts it), a sweeper deletes a new old snapshot", async () => {
    const r = await sys.slash("snapshot create DC0_H0_VM0 old-3", { user_id: "UALICE" });
    expect(await finalPost(sys, r.responseUrl)).toMatch(/^:white_check_mark: Took the snapshot/);
    const s = await sweeper("timer");
    s.start();
    try {
      await waitUntil("the timer's sweep to delete old-3", async () => ((await names(sys, "DC0_H0_VM0")).includes("old-3") ? undefined : true), 20_000);
    } finally {
      await s.stop();
    }
    expect(s.stats.deleted).toBe(1);
    expect(await names(sys, "DC0_H0_VM0")).toEqual(["by hand"]);
  });
});
