import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitUntil } from "@iaas/testkit";
import { VimClient, listVmSummaries } from "@iaas/vsphere";
import { REMEDIATION_ADMIN, counter, startWorld, type World } from "./helpers.js";

const CPU = "VM CPU Usage";
// The demo inventory: a VM with CPU hot-add, present (same name, same moref) in both simulators.
const HOT = "DC0_C0_RP0_VM0";

describe("remediation with two vCenters (VCENTER_SOURCES)", () => {
  let w: World;
  let b: VimClient;
  const cpuOnB = async (name: string) => (await listVmSummaries(b)).find((v) => v.name === name)!.numCPU ?? 0;

  beforeAll(async () => {
    w = await startWorld({ secondVcenter: "vc-b", power: true, pendingRecheckMs: 10 * 60_000 });
    b = await VimClient.connect({ url: w.simB!.url, username: w.simB!.username, password: w.simB!.password });
  });
  afterAll(async () => {
    await b?.logout().catch(() => undefined);
    await w?.close();
  });

  it("an alarm from vCenter B acts on B's VM, not on A's VM of the same name", async () => {
    const beforeA = (await w.vm(HOT)).numCpu;
    const beforeB = await cpuOnB(HOT);
    // Same inventory in both simulators: the alarm's moref names a VM in A as well.
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm(CPU, { type: "VirtualMachine", name: HOT }), "binary-tanzu", w.simB!.url);
    expect(posted.status).toBe(200);
    const n = await w.waitNotice("the action", (x) => x.cause === posted.eventId);
    // The notice and the audit record name B; a decision in the default vCenter names none.
    expect(n).toMatchObject({ kind: "remediation.action", vm: HOT, vcenter: "vc-b" });
    await w.caughtUp();
    expect((await w.audits()).find((a) => a.cause === posted.eventId)).toMatchObject({ decision: "acted", vcenter: "vc-b" });
    expect(await cpuOnB(HOT)).toBe(beforeB + 1);
    expect((await w.vm(HOT)).numCpu).toBe(beforeA);
  });

  it("B's cooldown is B's own: the same VM in A is still acted on (state keyed by vCenter)", async () => {
    const beforeA = (await w.vm(HOT)).numCpu;
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm(CPU, { type: "VirtualMachine", name: HOT }));
    const n = await w.waitNotice("the action in A", (x) => x.cause === posted.eventId);
    expect(n.kind).toBe("remediation.action");
    expect(n.vcenter).toBeUndefined();
    expect((await w.vm(HOT)).numCpu).toBe(beforeA + 1);
    const keys: string[] = [];
    for await (const k of await w.kv.keys("cooldown.scale.>")) keys.push(k);
    const moref = (await w.moref(HOT)).value;
    const enc = (s: string) => `cooldown.scale.${Buffer.from(s).toString("base64url")}`;
    expect(keys.sort()).toEqual([enc(moref), enc(`vc-b/${moref}`)].sort());
  });

  it("an event from a source VCENTER_SOURCES does not name is refused: audited, not acted on", async () => {
    const beforeA = (await w.vm(HOT)).numCpu;
    const beforeB = await cpuOnB(HOT);
    const refusedBefore = await counter(w, "iaas_remediation_events_total", { outcome: "unknown-source" });
    w.clock.advance(11 * 60_000); // past both cooldowns: only the source refuses it
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm(CPU, { type: "VirtualMachine", name: HOT }), "binary-tanzu", "https://vc-unknown.example.com/sdk");
    expect(posted.status).toBe(200);
    const n = await w.waitNotice("the refusal", (x) => x.cause === posted.eventId);
    expect(n.kind).toBe("remediation.skip");
    expect(n.text).toContain("vc-unknown.example.com");
    await w.caughtUp();
    const audit = (await w.audits()).find((a) => a.cause === posted.eventId);
    expect(audit).toMatchObject({ decision: "skipped", reason: "unknown-vcenter" });
    expect(await counter(w, "iaas_remediation_events_total", { outcome: "unknown-source" })).toBe(refusedBefore + 1);
    expect((await w.vm(HOT)).numCpu).toBe(beforeA);
    expect(await cpuOnB(HOT)).toBe(beforeB);
  });

  it("a pause of vCenter B holds B's alarms back and not A's; status lists it; `resume vc=` ends it", async () => {
    const text = (ack: { json: unknown }) => JSON.stringify(ack.json);
    w.clock.advance(Date.now() - w.clock.now + 11 * 60_000); // past the cooldowns, on the gateway's clock
    const paused = await w.slash("remediation pause vc=vc-b 2h swapping hosts", REMEDIATION_ADMIN);
    expect(text(paused)).toContain("Automatic remediation is paused in vCenter");
    expect(text(paused)).toContain("resume vc=vc-b");
    expect(text(await w.slash("remediation pause vc=Not_An_Id 1h", REMEDIATION_ADMIN))).toContain("vc=");
    // A vCenter the gateway does not know (its VCENTERS) is refused, not paused in vain.
    const unknown = text(await w.slash("remediation pause vc=nope 1h", REMEDIATION_ADMIN));
    expect(unknown).toContain("There is no vCenter `nope`");
    expect(text(await w.slash("remediation status", REMEDIATION_ADMIN))).not.toContain("nope");

    const beforeA = (await w.vm(HOT)).numCpu;
    const beforeB = await cpuOnB(HOT);
    const onB = await w.post("AlarmStatusChangedEvent", await w.alarm(CPU, { type: "VirtualMachine", name: HOT }), "binary-tanzu", w.simB!.url);
    const onA = await w.post("AlarmStatusChangedEvent", await w.alarm(CPU, { type: "VirtualMachine", name: HOT }));
    expect(await w.waitNotice("the action in A", (x) => x.cause === onA.eventId)).toMatchObject({ kind: "remediation.action" });
    await w.caughtUp();
    expect(await waitUntil("B's skipped decision", async () => (await w.audits()).find((a) => a.cause === onB.eventId))).toMatchObject({
      decision: "skipped",
      reason: "paused",
      vcenter: "vc-b",
    });
    expect((await w.vm(HOT)).numCpu).toBe(beforeA + 1);
    expect(await cpuOnB(HOT)).toBe(beforeB);

    const status = text(await w.slash("remediation status", REMEDIATION_ADMIN));
    expect(status).toContain("paused in vCenter");
    expect(status).toContain("1 alarm not acted on during the pause");
    expect(status).not.toContain("(every vCenter)");
    // The resume of every vCenter's pause leaves B's own alone.
    expect(text(await w.slash("remediation resume", REMEDIATION_ADMIN))).toContain("was not paused");
    const resumed = text(await w.slash("remediation resume vc=vc-b", REMEDIATION_ADMIN));
    expect(resumed).toContain("resumed in vCenter");
    expect(resumed).toContain("1 alarm not acted on during the pause");
    expect(text(await w.slash("remediation status", REMEDIATION_ADMIN))).toContain("is not paused");
  });

  it("a change deferred on B's VM is applied when `/iaas power off <vm> vc=vc-b` powers it off (its result names B), not A's VM of the same name", async () => {
    const COLD = "DC0_H0_VM1"; // no CPU hot-add, in both simulators
    const onB = async () => (await listVmSummaries(b)).find((v) => v.name === COLD)!;
    const beforeA = await w.vm(COLD);
    const beforeB = await onB();
    expect(beforeB.powerState).toBe("poweredOn");
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm(CPU, { type: "VirtualMachine", name: COLD }), "binary-tanzu", w.simB!.url);
    expect(await w.waitNotice("the deferral in B", (x) => x.cause === posted.eventId)).toMatchObject({ kind: "remediation.deferred", vm: COLD, vcenter: "vc-b" });
    const ack = await w.slash(`power off ${COLD} vc=vc-b`, REMEDIATION_ADMIN);
    expect(JSON.stringify(ack.json)).not.toContain(":x:");
    // The re-check is ten minutes away and no power-off event is posted: only the result can do it.
    await waitUntil("the deferred vCPU on B's VM", async () => {
      const now = await onB();
      return now.powerState === "poweredOff" && (now.numCPU ?? 0) === (beforeB.numCPU ?? 0) + 1;
    }, 10_000);
    expect(await w.waitNotice("the deferred change applied in B", (x) => x.kind === "remediation.action" && x.vm === COLD)).toMatchObject({ reason: "deferred-applied", vcenter: "vc-b" });
    const afterA = await w.vm(COLD);
    expect(afterA.numCpu).toBe(beforeA.numCpu);
    expect(afterA.powerState).toBe(beforeA.powerState);
  });
});
