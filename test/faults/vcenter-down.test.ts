/**
 * The vCenter simulator stops. Users get a clear, coded failure within the retry budget
 * (IAAS_VCENTER_UNAVAILABLE, retryable: retried with back-off up to max deliveries, then a dead
 * letter and one failed result); a command whose retries outlive the outage succeeds. After
 * `sim.restart()` (a fresh inventory on the same URL, so the proxy's session is unknown there)
 * the proxy logs in again by itself and new commands succeed.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Consumers, type FinalResult } from "@iaas/contracts";
import { FaultSystem, until } from "./lib/system.js";
import { report } from "./lib/rounds.js";

describe("the vCenter simulator stops and comes back", () => {
  let sys: FaultSystem;
  const figures: Record<string, unknown> = {};
  beforeAll(async () => {
    sys = await FaultSystem.start({ name: "vcenter-down", env: { power: { POWER_TIMEOUT_MS: "4000" } } });
  });
  afterAll(async () => {
    report("vCenter down", figures);
    await sys?.dispose();
  });

  const readyz = async () => (await fetch(`${sys.svc("vcenter-proxy").ready!.healthUrl}/readyz`)).status;
  const accepted = (r: { id: string; http?: { status: number; body: string } }) => {
    expect(r.http?.status).toBe(200);
    expect(r.http?.body).toContain(r.id);
  };

  it("while it is down: a coded, retryable failure after max deliveries, a dead letter, one clear Slack post", async () => {
    await sys.sim.stop();
    await until("vcenter-proxy /readyz to say not ready", async () => (await readyz()) === 503, 20_000, sys);
    const r = await sys.slash("power off DC0_H0_VM0");
    accepted(r);
    const finals = await sys.waitFinals([r.id], 90_000, "the failed result");
    const f = finals.get(r.id)!;
    expect(f).toHaveLength(1);
    const fail = f[0] as Extract<FinalResult, { status: "failed" }>;
    expect(fail.status).toBe("failed");
    expect(["IAAS_VCENTER_UNAVAILABLE", "IAAS_TIMEOUT"]).toContain(fail.error.code);
    expect(fail.error.retryable).toBe(true);
    await sys.deadLetters.read();
    const dl = sys.deadLetters.items.filter((d) => d.data.command.id === r.id);
    expect(dl, "one dead letter").toHaveLength(1);
    expect(dl[0]!.data.deliveries, "retried up to max deliveries").toBe(Consumers.power.maxDeliver);
    const posts = await sys.slack.waitFor(() => sys.finalPosts(r.responseUrl).length > 0 && sys.finalPosts(r.responseUrl));
    expect(posts).toHaveLength(1);
    expect(posts[0]).toMatch(/failed/);
    expect(posts[0]).toMatch(/try again/i);
    expect(posts[0]).toContain(r.id);
    expect(posts[0]).not.toMatch(/Error:|at .+:\d+:\d+|ECONNREFUSED/);
    figures.failedAfterDeliveries = dl[0]!.data.deliveries;
    figures.code = fail.error.code;
  });

  it("after sim.restart(): a command retried across the restart succeeds, new commands succeed, the proxy is ready again", async () => {
    // Still down: this command's first deliveries fail and are retried with back-off ...
    const r = await sys.slash("power off DC0_H0_VM1");
    accepted(r);
    await until("the command's second delivery", async () => ((await sys.stateRecordOf(r.id))?.delivery ?? 0) >= 2, 30_000, sys);
    // ... and vCenter returns before they run out (a fresh inventory: every demo VM is on again).
    await sys.sim.restart();
    const f = (await sys.waitFinals([r.id], 60_000)).get(r.id)!;
    expect(f.map((x) => x.status)).toEqual(["succeeded"]);
    await until("vcenter-proxy /readyz to say ready", async () => (await readyz()) === 200, 30_000, sys);
    const r2 = await sys.slash("power off DC0_C0_RP0_VM0");
    accepted(r2);
    const f2 = (await sys.waitFinals([r2.id], 30_000)).get(r2.id)!;
    expect(f2.map((x) => x.status)).toEqual(["succeeded"]);
    expect(await sys.powerStateOf("DC0_H0_VM1")).toBe("poweredOff");
    expect(await sys.powerStateOf("DC0_C0_RP0_VM0")).toBe("poweredOff");
    // Nothing else was touched in the new inventory.
    expect(await sys.powerStateOf("DC0_H0_VM0")).toBe("poweredOn");
    expect(sys.crashes()).toEqual([]);
    figures.recoveredCommands = 2;
  });
});
