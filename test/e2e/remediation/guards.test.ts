import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Consumers, ProxyEndpoints } from "@iaas/contracts";
import { waitUntil } from "@iaas/testkit";
import { startWorld, type World } from "./helpers.js";

const CPU = "VM CPU Usage";
const MEMORY = "Virtual machine memory usage";
const MIN = 60_000;
// The demo inventory: a VM with CPU hot-add.
const HOT = "DC0_C0_RP0_VM0";

describe("the flap guard: one alarm red again and again on one VM hands it over to people", () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld({ remediation: { maxCpu: 8, cooldownMinutes: 5, flap: { count: 3, withinMinutes: 30 } } });
  });
  afterAll(async () => {
    await w?.close();
  });

  const red = async (vm = HOT) => {
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm(CPU, { type: "VirtualMachine", name: vm }));
    await w.caughtUp();
    return posted.eventId;
  };

  it("a flapping VM gets one hand-over notice and no further changes until the window passes with no red", async () => {
    const start = await w.vm(HOT);
    await red();
    w.clock.advance(6 * MIN);
    await red();
    expect((await w.vm(HOT)).numCpu).toBe(start.numCpu + 2);

    // The third red within 30 min: handed over, not acted on.
    w.clock.advance(6 * MIN);
    const third = await red();
    const handover = w.noticesFor(third);
    expect(handover, JSON.stringify(handover)).toHaveLength(1);
    expect(handover[0]).toMatchObject({ kind: "remediation.skip", severity: "warning", reason: "flapping", vm: HOT });
    expect(handover[0]!.text).toContain("flapping: handing over to you");

    // More reds, each past the cooldown, while it keeps flapping: audited, not posted, nothing changed.
    const later: string[] = [];
    for (let i = 0; i < 4; i++) {
      w.clock.advance(10 * MIN);
      later.push(await red());
    }
    expect((await w.vm(HOT)).numCpu).toBe(start.numCpu + 2);
    expect(w.notices.filter((n) => later.includes(n.cause ?? ""))).toEqual([]);
    expect(w.notices.filter((n) => n.reason === "flapping")).toHaveLength(1);
    const audits = (await w.audits()).filter((a) => later.includes(a.cause ?? ""));
    expect(audits.map((a) => a.reason)).toEqual(["flapping", "flapping", "flapping", "flapping"]);

    // 30 min with no red: remediation acts on the VM again.
    w.clock.advance(31 * MIN);
    const after = await red();
    expect(w.noticesFor(after)).toMatchObject([{ kind: "remediation.action" }]);
    expect((await w.vm(HOT)).numCpu).toBe(start.numCpu + 3);
  });
});

describe("the storm guard: hundreds of red alarms in a minute", () => {
  let w: World;
  const LIMIT = 3;
  beforeAll(async () => {
    // 20 VMs, half of them with hot-add; the others are skipped (withoutHotAdd: skip), never changed.
    w = await startWorld({ vcsim: { vmsPerPool: 10 }, remediation: { maxActionsPerMinute: LIMIT, withoutHotAdd: "skip", maxMemoryGB: 64 } });
  }, 120_000);
  afterAll(async () => {
    await w?.close();
  });

  it("300 red alarms give at most maxActionsPerMinute changes and one summary notice", async () => {
    const names = await listVms(w);
    const before = new Map(await Promise.all(names.map(async (n) => [n, await w.vm(n)] as const)));
    await w.stopRemediation();
    const causes: string[] = [];
    for (let i = 0; i < 300; i++) {
      const vm = names[i % names.length]!;
      const alarm = i % 2 === 0 ? CPU : MEMORY;
      causes.push((await w.post("AlarmStatusChangedEvent", await w.alarm(alarm, { type: "VirtualMachine", name: vm }))).eventId);
    }
    await w.startRemediation();
    // 300 events on 2 shared cores: a longer wait than caughtUp's.
    await waitUntil(
      "remediation to take and ack all 300 events",
      async () => {
        const i = await w.jet.jsm.consumers.info(Consumers.remediation.stream, Consumers.remediation.durable);
        return i.num_pending === 0 && i.num_ack_pending === 0;
      },
      150_000,
    );

    let changed = 0;
    for (const n of names) {
      const [a, b] = [before.get(n)!, await w.vm(n)];
      if (a.numCpu !== b.numCpu || a.memoryMB !== b.memoryMB) changed++;
    }
    expect(changed).toBeGreaterThan(0);
    expect(changed).toBeLessThanOrEqual(LIMIT);
    // The summary comes once the brake's minute is over, with the count of what it skipped.
    expect(w.notices.filter((n) => n.reason === "brake" || n.reason === "storm")).toEqual([]);
    w.clock.advance(60_000);
    await w.waitNotice("the brake's summary", (n) => n.reason === "storm");
    const brake = w.notices.filter((n) => n.reason === "brake" || n.reason === "storm");
    expect(brake, JSON.stringify(brake.map((n) => n.text))).toHaveLength(1);
    expect(brake[0]).toMatchObject({ kind: "remediation.skip", severity: "warning", reason: "storm" });
    expect(brake[0]!.text).toContain(`limit of ${LIMIT} changes a minute`);
    // Each refusal is still in the audit, and counted in the summary (a redelivered one may count twice).
    const refused = (await w.audits()).filter((a) => a.reason === "brake" && causes.includes(a.cause ?? ""));
    expect(refused.length).toBeGreaterThan(LIMIT);
    const skipped = Number(/it skipped (\d+) changes for red alarms between/.exec(brake[0]!.text)?.[1]);
    expect(skipped).toBeGreaterThanOrEqual(refused.length);
    expect(skipped).toBeLessThanOrEqual(300 - LIMIT);
  }, 240_000);
});

describe("the brake's short cut: once the minute's budget is spent, red alarms are refused without reading their VM", () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld({ remediation: { maxActionsPerMinute: 1, cooldownMinutes: 10 } });
  });
  afterAll(async () => {
    await w?.close();
  });

  it("no VM read for a refusal once the brake said no; the cooldown still comes first; the next minute reads and acts again", async () => {
    // Every VM read remediation asks vcenter-proxy for, by VM name (a plain subscriber sees each request).
    const reads: string[] = [];
    const sub = w.nc.subscribe(ProxyEndpoints.vmInfo.subject, {
      callback: (_err, m) => {
        reads.push(String((m.json() as { vm?: string }).vm));
      },
    });
    const red = async (vm: string, alarm = CPU) => {
      const posted = await w.post("AlarmStatusChangedEvent", await w.alarm(alarm, { type: "VirtualMachine", name: vm }));
      await w.caughtUp();
      return posted.eventId;
    };
    try {
      // The minute's one change, then a refusal that reads its VM (the brake says no only when asked).
      const acted = await red(HOT);
      expect(w.noticesFor(acted)).toMatchObject([{ kind: "remediation.action" }]);
      const first = await red("DC0_H0_VM0");
      await w.nc.flush();
      expect(reads).toEqual([HOT, "DC0_H0_VM0"]);

      // Now known spent: refused as `brake` with no read, whatever the VM (with hot-add or without).
      const later = [await red("DC0_H0_VM1"), await red("DC0_C0_RP0_VM1"), await red("DC0_H0_VM1", MEMORY)];
      // The VM changed a moment ago: its cooldown refuses, still without a read.
      const cooled = await red(HOT);
      await w.nc.flush();
      expect(reads).toEqual([HOT, "DC0_H0_VM0"]);
      const audits = await w.audits();
      const reasonOf = (cause: string) => audits.filter((a) => a.cause === cause).map((a) => a.reason);
      for (const c of [first, ...later]) expect(reasonOf(c)).toEqual(["brake"]);
      expect(reasonOf(cooled)).toEqual(["cooldown"]);
      expect(w.notices.filter((n) => [first, ...later].includes(n.cause ?? ""))).toEqual([]);

      // The minute over: its summary counts every refusal, and the next red reads its VM and acts.
      w.clock.advance(61_000);
      const summary = await w.waitNotice("the brake's summary", (n) => n.reason === "storm");
      expect(summary.text).toContain("it skipped 4 changes for red alarms between");
      const before = await w.vm("DC0_H0_VM0");
      const next = await red("DC0_H0_VM0");
      expect(w.noticesFor(next)).toMatchObject([{ kind: "remediation.action" }]);
      expect((await w.vm("DC0_H0_VM0")).numCpu).toBe(before.numCpu + 1);
      await w.nc.flush();
      expect(reads).toEqual([HOT, "DC0_H0_VM0", "DC0_H0_VM0"]);
    } finally {
      sub.unsubscribe();
    }
  });
});

async function listVms(w: World): Promise<string[]> {
  const { listVmSummaries } = await import("@iaas/vsphere");
  return (await listVmSummaries(w.observer)).filter((v) => !v.template && v.name.startsWith("DC0_")).map((v) => v.name).sort();
}
