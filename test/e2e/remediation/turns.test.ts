import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWorld, type World } from "./helpers.js";

const CPU = "VM CPU Usage";
const MEMORY = "Virtual machine memory usage";
// The demo inventory: VMs with CPU and memory hot-add.
const HOT = "DC0_C0_RP0_VM0";
const HOT2 = "DC0_H0_VM0";

describe("turns: events of different VMs side by side, those of one VM in stream order", () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld({ remediation: { maxCpu: 16, maxMemoryGB: 64, cooldownMinutes: 10, maxActionsPerMinute: 100 } });
  });
  afterAll(async () => {
    await w?.close();
  });

  it("a queue of red alarms on two VMs: per VM the first in the stream acts, the ones after it meet its cooldown", async () => {
    const before = new Map([[HOT, await w.vm(HOT)], [HOT2, await w.vm(HOT2)]]);
    await w.stopRemediation();
    const causes = new Map<string, string[]>([[HOT, []], [HOT2, []]]);
    for (let i = 0; i < 6; i++) {
      for (const vm of [HOT, HOT2]) {
        const name = i % 2 === 0 ? CPU : MEMORY;
        // An alarm definition of its own each (as vCenter's alarm-<n>), so no red supersedes another.
        const data = { ...(await w.alarm(name, { type: "VirtualMachine", name: vm })), Alarm: { Name: name, Alarm: { Type: "Alarm", Value: `alarm-${100 + i}` } } };
        causes.get(vm)!.push((await w.post("AlarmStatusChangedEvent", data)).eventId);
      }
    }
    await w.startRemediation();
    await w.caughtUp();
    const audits = await w.audits();
    for (const [vm, ids] of causes) {
      const reasons = ids.map((id) => audits.filter((a) => a.cause === id).map((a) => a.reason));
      expect(reasons, vm).toEqual([["hot-add"], ...ids.slice(1).map(() => ["cooldown"])]);
      // One change each: no two events of the VM read it before the other's cooldown was written.
      const after = await w.vm(vm);
      expect(after.numCpu, vm).toBe(before.get(vm)!.numCpu + 1);
      expect(after.memoryMB, vm).toBe(before.get(vm)!.memoryMB);
    }
  });
});
