import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Subjects, eventMsgId } from "@iaas/contracts";
import { counter, startWorld, type World } from "./helpers.js";

const CPU = "VM CPU Usage";

describe("the brake, a poisoned message, an interrupted change", () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld({ remediation: { maxActionsPerMinute: 1 } });
  });
  afterAll(async () => {
    await w?.close();
  });

  it("at most maxActionsPerMinute changes a minute, across VMs; the next minute acts again", async () => {
    const a = await w.post("AlarmStatusChangedEvent", await w.alarm(CPU, { type: "VirtualMachine", name: "DC0_H0_VM0" }));
    expect((await w.waitNotice("the first", (x) => x.cause === a.eventId)).kind).toBe("remediation.action");
    const before = await w.vm("DC0_C0_RP0_VM0");
    const b = await w.post("AlarmStatusChangedEvent", await w.alarm(CPU, { type: "VirtualMachine", name: "DC0_C0_RP0_VM0" }));
    // The refusal is audited, not posted; once the minute is over, its one summary notice says how many the brake skipped.
    await w.caughtUp();
    expect(w.noticesFor(b.eventId)).toEqual([]);
    expect((await w.audits()).find((x) => x.cause === b.eventId)).toMatchObject({ decision: "skipped", reason: "brake" });
    expect(await w.vm("DC0_C0_RP0_VM0")).toEqual(before);
    expect(w.notices.filter((x) => x.reason === "storm")).toEqual([]);
    w.clock.advance(61_000);
    const braked = await w.waitNotice("the brake's summary", (x) => x.reason === "storm");
    expect(braked).toMatchObject({ kind: "remediation.skip", severity: "warning" });
    expect(braked.text).toContain("maxActionsPerMinute");
    expect(braked.text).toContain("it skipped 1 change for red alarms between");
    const c = await w.post("AlarmStatusChangedEvent", await w.alarm(CPU, { type: "VirtualMachine", name: "DC0_C0_RP0_VM0" }));
    expect((await w.waitNotice("the next minute", (x) => x.cause === c.eventId)).kind).toBe("remediation.action");
    expect((await w.vm("DC0_C0_RP0_VM0")).numCpu).toBe(before.numCpu + 1);
  });

  it("a message that is not a vSphere event is dropped, and the next one is handled", async () => {
    const poison = await counter(w, "iaas_remediation_events_total", { outcome: "poison" });
    await w.jet.js.publish(Subjects.event("AlarmStatusChangedEvent"), "not json", { msgID: "poison-1" });
    await w.jet.js.publish(Subjects.event("AlarmStatusChangedEvent"), JSON.stringify({ key: 1 }), { msgID: "poison-2" });
    w.clock.advance(11 * 60_000);
    const ok = await w.post("AlarmStatusChangedEvent", await w.alarm(CPU, { type: "VirtualMachine", name: "DC0_H0_VM0" }));
    await w.waitNotice("the next event", (x) => x.cause === ok.eventId);
    await w.caughtUp();
    expect(await counter(w, "iaas_remediation_events_total", { outcome: "poison" })).toBe(poison + 2);
  });

  it("an event whose change was made but not acknowledged (a crash) records it once and adds nothing more", async () => {
    w.clock.advance(11 * 60_000);
    const vm = await w.vm("DC0_H0_VM0");
    const data = await w.alarm(CPU, { type: "VirtualMachine", name: "DC0_H0_VM0" });
    // What an instance leaves behind when it dies after the reconfigure, before the notice and the ack:
    // the cooldown naming the event and its target, and the VM already at the target.
    await w.stopRemediation();
    const eventId = eventMsgId({ source: w.source, eventClass: "AlarmStatusChangedEvent", key: Number(data.Key), id: "", data });
    await w.kv.put(`cooldown.scale.${Buffer.from(vm.moref).toString("base64url")}`, JSON.stringify({ until: w.clock.now + 600_000, eventId, cpu: vm.numCpu + 1, from: vm.numCpu, reason: "hot-add" }));
    await (await w.observer.vm(await w.moref("DC0_H0_VM0")).reconfigure({ numCPUs: vm.numCpu + 1 })).wait();
    await w.post("AlarmStatusChangedEvent", data);
    await w.startRemediation();
    const n = await w.waitNotice("the resumed action", (x) => x.cause === eventId);
    expect(n.kind).toBe("remediation.action");
    expect(n.text).toContain(`${vm.numCpu} vCPU → ${vm.numCpu + 1} vCPU`);
    await w.caughtUp();
    expect((await w.vm("DC0_H0_VM0")).numCpu).toBe(vm.numCpu + 1);
    expect(w.noticesFor(eventId)).toHaveLength(1);
  });
});

describe("remediation turned off", () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld({ remediation: { enabled: false } });
  });
  afterAll(async () => {
    await w?.close();
  });

  it("says so for a red alarm and changes nothing", async () => {
    const before = await w.vm("DC0_H0_VM0");
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm(CPU, { type: "VirtualMachine", name: "DC0_H0_VM0" }));
    const n = await w.waitNotice("the skip", (x) => x.cause === posted.eventId);
    expect(n.kind).toBe("remediation.skip");
    expect(n.text).toContain("remediation is turned off");
    expect(await w.vm("DC0_H0_VM0")).toEqual(before);
  });
});
