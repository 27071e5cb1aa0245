import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { normalizeVsphereEvent, type VsphereEvent } from "@iaas/contracts";
import { waitUntil } from "@iaas/testkit";
import type { AlarmStatusChangedEventSpec, VimClient } from "@iaas/vsphere";
import { startWorld, storedEvent, type World } from "./helpers.js";

/** An alarm event as vCenter itself would log it, posted into the simulator (`vm` filled: the simulator's entity filters read only that field). */
async function alarmEvent(c: VimClient, w: World, vm: string, alarm: string, to = "red"): Promise<AlarmStatusChangedEventSpec> {
  const ref = await w.moref(vm);
  const dc = await c.searchIndex.findByInventoryPath("/DC0");
  return {
    _type: "AlarmStatusChangedEvent",
    datacenter: { name: "DC0", datacenter: dc! },
    vm: { name: vm, vm: ref },
    fullFormattedMessage: `Alarm '${alarm}' on ${vm} changed from Green to ${to === "red" ? "Red" : "Green"}`,
    alarm: { name: alarm, alarm: { type: "Alarm", value: "alarm-6" } },
    source: { name: "Datacenters", entity: c.serviceContent.rootFolder },
    entity: { name: vm, entity: ref },
    from: to === "red" ? "green" : "red",
    to,
  };
}

/** The newest event key vCenter has. */
async function latestKey(c: VimClient): Promise<number> {
  return Math.max(...(await c.eventManager.queryEvents({ maxCount: 1000 })).map((e) => e.key));
}

describe("the same chain from the poller, without the bridge", () => {
  let w: World;
  beforeAll(async () => {
    // Every event vCenter logs is published (as VEBA would); remediation picks what it needs.
    w = await startWorld({ poller: { intervalMs: 100 } });
  });
  afterAll(async () => {
    await w?.close();
  });

  /** Waits until the poller has published everything vCenter logged so far, and remediation has taken it. */
  async function settled(): Promise<void> {
    const latest = await latestKey(w.observer);
    await waitUntil(`the poller to publish through key ${latest}`, async () => {
      try {
        await storedEvent(w, (id) => id.startsWith(`${w.source}#${latest}#`));
        return true;
      } catch {
        return false;
      }
    });
    await w.caughtUp();
  }

  it("a red CPU alarm posted into vCenter adds one vCPU; its own reconfigure event triggers nothing", async () => {
    const before = await w.vm("DC0_H0_VM0");
    await w.observer.eventManager.postEvent(await alarmEvent(w.observer, w, "DC0_H0_VM0", "VM CPU Usage"));
    const n = await w.waitNotice("the action", (x) => x.kind === "remediation.action" && x.vm === "DC0_H0_VM0");
    expect(n.cause).toMatch(new RegExp(`^${w.source.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}#\\d+#AlarmStatusChangedEvent#[0-9T:.Z-]+$`));
    const stored: VsphereEvent = await storedEvent(w, n.cause!);
    expect(stored).toMatchObject({ via: "poller", eventClass: "AlarmStatusChangedEvent", source: w.source });
    expect(normalizeVsphereEvent(stored)).toMatchObject({ alarmName: "VM CPU Usage", to: "red", entity: { type: "VirtualMachine", name: "DC0_H0_VM0" } });
    expect((await w.vm("DC0_H0_VM0")).numCpu).toBe(before.numCpu + 1);

    // The reconfigure logged VmReconfiguredEvent (and the proxy's session events); once the
    // poller has published them and remediation has read them, nothing else has happened.
    await settled();
    expect((await w.vm("DC0_H0_VM0")).numCpu).toBe(before.numCpu + 1);
    expect(w.notices.filter((x) => x.vm === "DC0_H0_VM0")).toHaveLength(1);
  });

  it("a change deferred for a VM without hot-add is made when the VM's power-off reaches remediation through the poller", async () => {
    const before = await w.vm("DC0_H0_VM1");
    await w.observer.eventManager.postEvent(await alarmEvent(w.observer, w, "DC0_H0_VM1", "VM CPU Usage"));
    await w.waitNotice("the deferral", (x) => x.kind === "remediation.deferred" && x.vm === "DC0_H0_VM1");
    expect((await w.vm("DC0_H0_VM1")).numCpu).toBe(before.numCpu);
    // The re-check of deferred changes is off in this world: only the VmPoweredOffEvent can apply it.
    await (await w.observer.vm(await w.moref("DC0_H0_VM1")).powerOff()).wait();
    const applied = await w.waitNotice("the change", (x) => x.kind === "remediation.action" && x.vm === "DC0_H0_VM1");
    expect(applied.text).toContain("Applied the change deferred");
    expect(await w.vm("DC0_H0_VM1")).toMatchObject({ numCpu: before.numCpu + 1, powerState: "poweredOff" });
  });

  it("an alarm that turned red and back to green before remediation saw it is left alone", async () => {
    await settled();
    await w.stopRemediation();
    const before = await w.vm("DC0_C0_RP0_VM0");
    await w.observer.eventManager.postEvent(await alarmEvent(w.observer, w, "DC0_C0_RP0_VM0", "VM CPU Usage"));
    await w.observer.eventManager.postEvent(await alarmEvent(w.observer, w, "DC0_C0_RP0_VM0", "VM CPU Usage", "green"));
    const latest = await latestKey(w.observer);
    await waitUntil("both published", async () => (await storedEvent(w, (id) => id.startsWith(`${w.source}#${latest}#`)).catch(() => undefined)) !== undefined);
    await w.startRemediation();
    const n = await w.waitNotice("the skip", (x) => x.vm === "DC0_C0_RP0_VM0");
    expect(n.kind).toBe("remediation.skip");
    expect(n.text).toContain("already turned green");
    await settled();
    expect(await w.vm("DC0_C0_RP0_VM0")).toEqual(before);
  });
});
