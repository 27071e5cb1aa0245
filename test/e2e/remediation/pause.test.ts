/**
 * A maintenance window: an IT admin pauses automatic remediation over Slack; a red CPU alarm is
 * then audited as skipped (reason `paused`) and not acted on, `status` lists it, the pause holds
 * across a restart of remediation (it lives in the `iaas_remediation_control` bucket), and after
 * `resume` the next alarm acts. A user who is not an admin cannot pause it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PAUSE_KEY, activePause } from "@iaas/contracts";
import { decodeJson, openBucket, type KV } from "@iaas/runtime";
import { waitUntil } from "@iaas/testkit";
import { REMEDIATION_ADMIN, startWorld, type World } from "./helpers.js";

const CPU = "VM CPU Usage";
// A demo inventory VM with CPU hot-add.
const HOT = "DC0_C0_RP0_VM0";

describe("pausing remediation for a maintenance window", () => {
  let w: World;
  let control: KV;
  beforeAll(async () => {
    w = await startWorld();
    control = await openBucket(w.nc, "remediationControl");
  });
  afterAll(async () => {
    await w?.close();
  });

  const text = (ack: { json: unknown }) => JSON.stringify(ack.json);
  const stored = async () => {
    const e = await control.get(PAUSE_KEY);
    return e && e.operation === "PUT" && e.length > 0 ? activePause(decodeJson(e.value), Date.now()) : undefined;
  };
  // Remediation's clock is the world's (fixed unless moved): keep it on the gateway's wall clock.
  const syncClock = () => w.clock.advance(Date.now() - w.clock.now);

  it("refuses a user who is not an admin", async () => {
    const ack = await w.slash("remediation pause 2h nope", "U0001");
    expect(ack.status).toBe(200);
    expect(text(ack)).not.toContain("is paused");
    expect(await stored()).toBeUndefined();
  });

  it("pauses, holds an alarm back, reports it, survives a restart, and resumes", async () => {
    const ack = await w.slash("remediation pause 2h <b>patching</b> hosts", REMEDIATION_ADMIN);
    expect(ack.status).toBe(200);
    expect(text(ack)).toContain("Automatic remediation is paused until");
    // The reason is escaped for Slack.
    expect(text(ack)).toContain("&lt;b&gt;patching&lt;/b&gt; hosts");
    const p = await stored();
    expect(p).toMatchObject({ by: REMEDIATION_ADMIN, reason: "<b>patching</b> hosts" });
    expect(Date.parse(p!.until) - Date.parse(p!.at)).toBe(2 * 3_600_000);
    syncClock();

    const before = await w.vm(HOT);
    const held = await w.post("AlarmStatusChangedEvent", await w.alarm(CPU, { type: "VirtualMachine", name: HOT }));
    await w.caughtUp();
    const skipped = await waitUntil("the skipped decision in the audit trail", async () => (await w.audits()).find((a) => a.cause === held.eventId));
    expect(skipped).toMatchObject({ decision: "skipped", reason: "paused", vm: HOT });
    expect((await w.vm(HOT)).numCpu).toBe(before.numCpu);

    const status = await w.slash("remediation status", REMEDIATION_ADMIN);
    expect(text(status)).toContain("Automatic remediation is paused until");
    expect(text(status)).toContain("1 alarm not acted on during the pause");
    expect(text(status)).toContain(HOT);

    // A restart of remediation reads the pause back from the bucket.
    await w.stopRemediation();
    await w.startRemediation();
    const again = await w.post("AlarmStatusChangedEvent", await w.alarm(CPU, { type: "VirtualMachine", name: HOT }));
    await w.caughtUp();
    expect(await waitUntil("the second skipped decision", async () => (await w.audits()).find((a) => a.cause === again.eventId))).toMatchObject({ reason: "paused" });
    expect((await w.vm(HOT)).numCpu).toBe(before.numCpu);

    const resumed = await w.slash("remediation resume", REMEDIATION_ADMIN);
    expect(text(resumed)).toContain("Automatic remediation is resumed");
    expect(text(resumed)).toContain("2 alarms not acted on during the pause");
    expect(await stored()).toBeUndefined();
    expect(text(await w.slash("remediation status", REMEDIATION_ADMIN))).toContain("is not paused");

    syncClock();
    const acts = await w.post("AlarmStatusChangedEvent", await w.alarm(CPU, { type: "VirtualMachine", name: HOT }));
    expect(await w.waitNotice("the action after resume", (n) => n.cause === acts.eventId)).toMatchObject({ kind: "remediation.action", vm: HOT });
    expect((await w.vm(HOT)).numCpu).toBe(before.numCpu + 1);

    // Both changes are in the command audit trail.
    const trail = JSON.stringify(await w.slash("audit", REMEDIATION_ADMIN));
    expect(trail).toContain("remediation.pause");
    expect(trail).toContain("remediation.resume");
  });

  it("ends a pause by itself at its end time", async () => {
    await w.slash("remediation pause 1m", REMEDIATION_ADMIN);
    expect(await stored()).toBeDefined();
    // Past its end on remediation's clock, with the value still stored.
    w.clock.advance(Date.now() - w.clock.now + 2 * 60_000);
    const ev = await w.post("AlarmStatusChangedEvent", await w.alarm(CPU, { type: "VirtualMachine", name: HOT }));
    await w.caughtUp();
    const d = await waitUntil("a decision", async () => (await w.audits()).find((a) => a.cause === ev.eventId));
    expect(d.reason).not.toBe("paused");
  });
});
