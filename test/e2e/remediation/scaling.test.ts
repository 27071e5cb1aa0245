import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { normalizeVsphereEvent } from "@iaas/contracts";
import { waitUntil } from "@iaas/testkit";
import { FORMATS, counter, publishRaw, startWorld, storedEvent, type World } from "./helpers.js";

const CPU = "VM CPU Usage";
const MEMORY = "Virtual machine memory usage";
const MIN = 60_000;

// The demo inventory: every other generated VM has CPU and memory hot-add.
const HOT = "DC0_C0_RP0_VM0";
const HOT2 = "DC0_H0_VM0";
const COLD = "DC0_H0_VM1";
const COLD2 = "DC0_C0_RP0_VM1";

describe("vertical scaling, from VEBA CloudEvents through the bridge", () => {
  let w: World;
  beforeAll(async () => {
    // maxCpu 6: room for one vCPU per CloudEvent format on one VM, then the cap.
    w = await startWorld({ remediation: { maxCpu: 6, maxMemoryGB: 16 }, pendingRecheckMs: 200 });
  });
  afterAll(async () => {
    await w?.close();
  });

  it("the demo inventory is what these tests assume (hot-add on every other VM)", async () => {
    for (const [name, hot] of [[HOT, true], [HOT2, true], [COLD, false], [COLD2, false]] as const) {
      const r = await w.observer.retrieve([await w.moref(name)], ["config.cpuHotAddEnabled", "config.memoryHotAddEnabled", "runtime.powerState"]);
      const p = r[0]!.props;
      // vCenter leaves an unset flag out: unset is off.
      expect({ cpu: p["config.cpuHotAddEnabled"] ?? false, memory: p["config.memoryHotAddEnabled"] ?? false, power: p["runtime.powerState"] }, name).toEqual({ cpu: hot, memory: hot, power: "poweredOn" });
    }
  });

  it.each(FORMATS)("a red CPU alarm on a hot-add VM, sent %s, adds one vCPU", async (format) => {
    w.clock.advance(11 * MIN); // past the previous test's cooldown
    const before = await w.vm(HOT);
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm(CPU, { type: "VirtualMachine", name: HOT }), format);
    expect(posted.status).toBe(200);
    const n = await w.waitNotice("the action", (x) => x.cause === posted.eventId);
    expect(n).toMatchObject({ kind: "remediation.action", severity: "info", vm: HOT });
    expect(n.text).toContain(`${before.numCpu} vCPU → ${before.numCpu + 1} vCPU`);
    expect((await w.vm(HOT)).numCpu).toBe(before.numCpu + 1);
    await w.caughtUp();
    expect(w.noticesFor(posted.eventId)).toHaveLength(1);
  });

  it("a red memory alarm adds 2 GB", async () => {
    w.clock.advance(11 * MIN);
    const before = await w.vm(HOT2);
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm(MEMORY, { type: "VirtualMachine", name: HOT2 }));
    const n = await w.waitNotice("the action", (x) => x.cause === posted.eventId);
    expect(n.kind).toBe("remediation.action");
    expect((await w.vm(HOT2)).memoryMB).toBe(before.memoryMB + 2048);
    expect((await w.vm(HOT2)).numCpu).toBe(before.numCpu);
  });

  it("each action and decision reaches the Slack notify channel and the audit stream", async () => {
    const acted = w.notices.filter((n) => n.kind === "remediation.action");
    expect(acted.length).toBeGreaterThanOrEqual(5);
    await waitUntil("every action posted to Slack", () => acted.every((n) => w.slackPosts().some((p) => p.text.includes(n.text))));
    const audits = await w.audits();
    for (const n of acted) expect(audits.find((a) => a.id === n.id)).toMatchObject({ kind: "remediation", decision: "acted", cause: n.cause });
    expect(audits.find((a) => a.rule === "memory")?.change).toEqual({ memoryMB: { from: 32, to: 2080 } });
  });

  it("the same event twice acts once: the bridge's repeat is dropped by the stream, a late repeat by remediation", async () => {
    w.clock.advance(11 * MIN);
    const before = await w.vm(HOT2);
    const data = await w.alarm(CPU, { type: "VirtualMachine", name: HOT2 });
    const first = await w.post("AlarmStatusChangedEvent", data, "binary-router");
    const again = await w.post("AlarmStatusChangedEvent", data, "structured-tanzu");
    expect(again.json).toMatchObject({ duplicates: 1 });
    await w.waitNotice("the action", (x) => x.cause === first.eventId);
    // Past the stream's duplicate window the same event is stored again: remediation remembers it.
    const dropped = await counter(w, "iaas_remediation_events_total", { outcome: "duplicate" });
    await publishRaw(w, await storedEvent(w, first.eventId));
    await w.caughtUp();
    expect(await counter(w, "iaas_remediation_events_total", { outcome: "duplicate" })).toBe(dropped + 1);
    expect((await w.vm(HOT2)).numCpu).toBe(before.numCpu + 1);
    expect(w.noticesFor(first.eventId)).toHaveLength(1);
  });

  it("a second alarm inside the cooldown is noticed, not acted on", async () => {
    const before = await w.vm(HOT2);
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm(CPU, { type: "VirtualMachine", name: HOT2 }));
    const n = await w.waitNotice("the skip", (x) => x.cause === posted.eventId);
    expect(n).toMatchObject({ kind: "remediation.skip" });
    expect(n.text).toContain("cooldown");
    expect((await w.vm(HOT2)).numCpu).toBe(before.numCpu);
  });

  it("green acts never", async () => {
    w.clock.advance(11 * MIN);
    const before = await w.vm(HOT2);
    const handled = await counter(w, "iaas_remediation_events_total", { outcome: "ignored" });
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm(CPU, { type: "VirtualMachine", name: HOT2 }, { from: "red", to: "green" }));
    await w.caughtUp();
    expect(await counter(w, "iaas_remediation_events_total", { outcome: "ignored" })).toBe(handled + 1);
    expect(w.noticesFor(posted.eventId)).toEqual([]);
    expect(await w.vm(HOT2)).toEqual(before);
  });

  it("a red alarm that has gone back to green by the time it is handled is not acted on", async () => {
    w.clock.advance(11 * MIN);
    const before = await w.vm(HOT2);
    await w.stopRemediation();
    const red = await w.alarm(CPU, { type: "VirtualMachine", name: HOT2 });
    const green = await w.alarm(CPU, { type: "VirtualMachine", name: HOT2 }, { from: "red", to: "green" });
    const r = await w.post("AlarmStatusChangedEvent", red);
    await w.post("AlarmStatusChangedEvent", green, "structured-router");
    await w.startRemediation();
    const n = await w.waitNotice("the skip", (x) => x.cause === r.eventId);
    expect(n.kind).toBe("remediation.skip");
    expect(n.text).toContain("already turned green");
    await w.caughtUp();
    expect(await w.vm(HOT2)).toEqual(before);
  });

  it("past the cap the VM stays at the cap, and exactly one notice says so", async () => {
    // HOT went 1 → 5 with the four formats; one more reaches the cap of 6.
    w.clock.advance(11 * MIN);
    const toCap = await w.post("AlarmStatusChangedEvent", await w.alarm(CPU, { type: "VirtualMachine", name: HOT }));
    await w.waitNotice("the action", (x) => x.cause === toCap.eventId && x.kind === "remediation.action");
    expect((await w.vm(HOT)).numCpu).toBe(6);
    const causes: string[] = [];
    for (let i = 0; i < 3; i++) {
      w.clock.advance(11 * MIN);
      causes.push((await w.post("AlarmStatusChangedEvent", await w.alarm(CPU, { type: "VirtualMachine", name: HOT }))).eventId);
      // One at a time: a red alarm with a newer red one queued behind it is left to the newer one.
      await w.caughtUp();
    }
    expect((await w.vm(HOT)).numCpu).toBe(6);
    const capNotices = w.notices.filter((n) => causes.includes(n.cause ?? ""));
    expect(capNotices, JSON.stringify(capNotices)).toHaveLength(1);
    expect(capNotices[0]).toMatchObject({ kind: "remediation.skip", severity: "warning", vm: HOT });
    expect(capNotices[0]!.text).toContain("cap of 6 vCPU");
    // Every one of them is still audited.
    const audits = (await w.audits()).filter((a) => causes.includes(a.cause ?? ""));
    expect(audits.map((a) => a.reason)).toEqual(["at-cap", "at-cap", "at-cap"]);
    await waitUntil("the cap notice in Slack", () => w.slackPosts().some((p) => p.text.includes(capNotices[0]!.text)));
  });

  it("on a VM without hot-add the change waits, and is made after the VM is powered off (its power-off event)", async () => {
    const before = await w.vm(COLD);
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm(CPU, { type: "VirtualMachine", name: COLD }));
    const deferred = await w.waitNotice("the deferral", (x) => x.cause === posted.eventId);
    expect(deferred).toMatchObject({ kind: "remediation.deferred", vm: COLD });
    expect(deferred.text).toContain("next powered off");
    expect((await w.vm(COLD)).numCpu).toBe(before.numCpu);

    // Someone powers it off; VEBA sends the power-off event.
    await (await w.observer.vm(await w.moref(COLD)).powerOff()).wait();
    await w.post("VmPoweredOffEvent", await w.powerOffEvent(COLD), "binary-router");
    const applied = await w.waitNotice("the deferred change applied", (x) => x.kind === "remediation.action" && x.vm === COLD);
    expect(applied.text).toContain(`${before.numCpu} vCPU → ${before.numCpu + 1} vCPU`);
    expect(await w.vm(COLD)).toMatchObject({ numCpu: before.numCpu + 1, powerState: "poweredOff" });
    await waitUntil("the deferral and the change in Slack", () => [deferred, applied].every((n) => w.slackPosts().some((p) => p.text.includes(n.text))));
  });

  it("a change waiting for a power-off is also found by the re-check when no event says so", async () => {
    const before = await w.vm(COLD2);
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm(MEMORY, { type: "VirtualMachine", name: COLD2 }));
    await w.waitNotice("the deferral", (x) => x.cause === posted.eventId && x.kind === "remediation.deferred");
    // A second alarm does not stack another 2 GB on the waiting change.
    w.clock.advance(11 * MIN);
    const second = await w.post("AlarmStatusChangedEvent", await w.alarm(MEMORY, { type: "VirtualMachine", name: COLD2 }));
    expect((await w.waitNotice("the second alarm", (x) => x.cause === second.eventId)).text).toContain("already has a change waiting");
    expect((await w.vm(COLD2)).memoryMB).toBe(before.memoryMB);
    await (await w.observer.vm(await w.moref(COLD2)).powerOff()).wait();
    await w.waitNotice("the deferred change applied", (x) => x.kind === "remediation.action" && x.vm === COLD2);
    expect((await w.vm(COLD2)).memoryMB).toBe(before.memoryMB + 2048);
  });

  it("events remediation has no rule for are read and left alone", async () => {
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm("Some other alarm", { type: "VirtualMachine", name: HOT2 }));
    await w.caughtUp();
    expect(w.noticesFor(posted.eventId)).toEqual([]);
    expect(normalizeVsphereEvent(await storedEvent(w, posted.eventId)).alarmName).toBe("Some other alarm");
  });
});

describe("withoutHotAdd: restart, only for VMs opted in", () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld({ remediation: { withoutHotAdd: "restart", restartOptIn: { names: [COLD] } } });
  });
  afterAll(async () => {
    await w?.close();
  });

  it("an opted-in VM without hot-add is shut down, resized and powered on again", async () => {
    const before = await w.vm(COLD);
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm(CPU, { type: "VirtualMachine", name: COLD }));
    const n = await w.waitNotice("the restart", (x) => x.cause === posted.eventId);
    expect(n.kind).toBe("remediation.action");
    expect(n.text).toContain("Restarted");
    expect(await w.vm(COLD)).toMatchObject({ numCpu: before.numCpu + 1, powerState: "poweredOn" });
  });

  it("a VM that is not opted in is deferred instead, and the notice says why", async () => {
    const before = await w.vm(COLD2);
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm(CPU, { type: "VirtualMachine", name: COLD2 }));
    const n = await w.waitNotice("the deferral", (x) => x.cause === posted.eventId);
    expect(n.kind).toBe("remediation.deferred");
    expect(n.text).toContain("not opted in");
    expect(await w.vm(COLD2)).toMatchObject({ numCpu: before.numCpu, powerState: "poweredOn" });
  });
});
