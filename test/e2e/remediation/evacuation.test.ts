import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitUntil } from "@iaas/testkit";
import { startWorld, type World } from "./helpers.js";

const USAGE = "Datastore usage on disk";
const VM_STORAGE = "VM Storage Usage";
const MIN = 60_000;

/** The generated VMs all start on LocalDS_0 (the template too, which is never moved). */
const VMS = ["DC0_C0_RP0_VM0", "DC0_C0_RP0_VM1", "DC0_H0_VM0", "DC0_H0_VM1"];

describe("datastore evacuation", () => {
  let w: World;
  beforeAll(async () => {
    // LocalDS_0 is 95 % full; LocalDS_2 has the most room, LocalDS_1 some. The simulator does not
    // move free space on relocate: remediation plans with the sizes it reads.
    w = await startWorld({ vcsim: { datastoreSpaceGiB: { LocalDS_0: { capacity: 100, free: 5 }, LocalDS_1: { capacity: 100, free: 40 }, LocalDS_2: { capacity: 100, free: 60 } } } });
  });
  afterAll(async () => {
    await w?.close();
  });

  it("a red datastore usage alarm moves the VMs off it to the datastore with the most free space", async () => {
    for (const vm of VMS) expect((await w.vm(vm)).datastores).toEqual(["LocalDS_0"]);
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm(USAGE, { type: "Datastore", name: "LocalDS_0" }), "structured-tanzu");
    expect(posted.status).toBe(200);
    await w.caughtUp();
    const moved = w.noticesFor(posted.eventId);
    expect(moved.map((n) => [n.kind, n.vm]).sort()).toEqual(VMS.map((vm) => ["remediation.action", vm]).sort());
    for (const n of moved) expect(n.text).toContain("from `LocalDS_0` to `LocalDS_2`");
    for (const vm of VMS) expect((await w.vm(vm)).datastores).toEqual(["LocalDS_2"]);
    const audits = (await w.audits()).filter((a) => a.cause === posted.eventId);
    expect(audits.map((a) => a.change)).toEqual(VMS.map(() => ({ datastore: { from: "LocalDS_0", to: "LocalDS_2" } })));
    await waitUntil("the moves in Slack", () => moved.every((n) => w.slackPosts().some((p) => p.text.includes(n.text))));
  });

  it("a VM storage alarm moves that VM, to the best datastore it is not on", async () => {
    w.clock.advance(11 * MIN); // past the move cooldown of the evacuation
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm(VM_STORAGE, { type: "VirtualMachine", name: "DC0_H0_VM0" }), "binary-router");
    const n = await w.waitNotice("the move", (x) => x.cause === posted.eventId);
    expect(n).toMatchObject({ kind: "remediation.action", vm: "DC0_H0_VM0" });
    // LocalDS_0 would stay over the threshold; LocalDS_1 is the one that fits.
    expect(n.text).toContain("from `LocalDS_2` to `LocalDS_1`");
    expect((await w.vm("DC0_H0_VM0")).datastores).toEqual(["LocalDS_1"]);
  });

  it("a VM moved moments ago is not moved again (no ping-pong between datastores)", async () => {
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm(VM_STORAGE, { type: "VirtualMachine", name: "DC0_H0_VM0" }));
    const n = await w.waitNotice("the skip", (x) => x.cause === posted.eventId);
    expect(n.kind).toBe("remediation.skip");
    expect(n.text).toContain("moved less than");
    expect((await w.vm("DC0_H0_VM0")).datastores).toEqual(["LocalDS_1"]);
  });

  it("a datastore under the threshold is left alone", async () => {
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm(USAGE, { type: "Datastore", name: "LocalDS_1" }));
    const n = await w.waitNotice("the skip", (x) => x.cause === posted.eventId);
    expect(n.kind).toBe("remediation.skip");
    expect(n.text).toContain("60 % used, under the 80 % threshold");
  });
});

describe("datastore evacuation without a fitting target", () => {
  let w: World;
  beforeAll(async () => {
    // LocalDS_1 would be over 80 % used with anything more on it; LocalDS_2 has room but the policy excludes it.
    w = await startWorld({
      remediation: { excludedDatastores: ["localds_2"] },
      vcsim: { datastoreSpaceGiB: { LocalDS_0: { capacity: 100, free: 5 }, LocalDS_1: { capacity: 100, free: 15 }, LocalDS_2: { capacity: 100, free: 90 } } },
    });
  });
  afterAll(async () => {
    await w?.close();
  });

  it("sends a notice per VM and moves nothing", async () => {
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm(USAGE, { type: "Datastore", name: "LocalDS_0" }));
    await w.caughtUp();
    const notices = w.noticesFor(posted.eventId);
    expect(notices.map((n) => [n.kind, n.severity, n.vm]).sort()).toEqual(VMS.map((vm) => ["remediation.skip", "warning", vm]).sort());
    for (const n of notices) expect(n.text).toMatch(/^Cannot move .* off `LocalDS_0`.*stays under 80 % used.*Nothing was moved\.$/);
    for (const vm of VMS) expect((await w.vm(vm)).datastores).toEqual(["LocalDS_0"]);
    expect((await w.audits()).filter((a) => a.cause === posted.eventId).map((a) => a.reason)).toEqual(VMS.map(() => "no-target"));
    await waitUntil("the notices in Slack", () => notices.every((n) => w.slackPosts().some((p) => p.text.includes(n.text))));
  });
});
