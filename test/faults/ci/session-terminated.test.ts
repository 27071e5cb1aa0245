/**
 * vcenter-proxy's vCenter session terminated from a second session (an administrator ending it
 * in the session list): invisible to users. The proxy meets NotAuthenticated, logs in again once
 * and repeats the call; the Slack user only sees the command succeed. Also while a power task is
 * under way. Runs in `npm test`: real processes, about ten seconds.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultSystem, until } from "../lib/system.js";
import { POWER_EVENTS, report } from "../lib/rounds.js";

describe("the proxy's vCenter session is terminated", () => {
  let sys: FaultSystem;
  let terminated = 0;
  beforeAll(async () => {
    sys = await FaultSystem.start({ name: "session", vcsim: { methodDelayMs: { PowerOffVM_Task: 800, PowerOnVM_Task: 800 } } });
  });
  afterAll(async () => {
    await sys?.dispose();
  });

  const run = async (text: string) => {
    const r = await sys.slash(text);
    expect(r.http?.status).toBe(200);
    expect(r.http?.body).toContain(r.id);
    return r;
  };
  const succeeded = async (r: { id: string; responseUrl: string }) => {
    const f = (await sys.waitFinals([r.id], 30_000)).get(r.id)!;
    expect(f.map((x) => x.status)).toEqual(["succeeded"]);
    const posts = await sys.slack.waitFor(() => sys.finalPosts(r.responseUrl).length > 0 && sys.finalPosts(r.responseUrl));
    expect(posts).toHaveLength(1);
    expect(posts[0]).toMatch(/:white_check_mark:/);
    expect(posts[0]).not.toMatch(/NotAuthenticated|session|log ?in/i);
  };

  it("between commands: the next command succeeds, three times over", async () => {
    const { counts: before } = await sys.eventCounts(POWER_EVENTS);
    for (const [i, text] of ["power off DC0_H0_VM0", "power on DC0_H0_VM0", "power off DC0_H0_VM0"].entries()) {
      const keys = await sys.terminateOtherSessions();
      expect(keys.length, `round ${i}: the proxy's session was found and terminated`).toBeGreaterThan(0);
      terminated += keys.length;
      await succeeded(await run(text));
    }
    expect(await sys.powerStateOf("DC0_H0_VM0")).toBe("poweredOff");
    const { counts } = await sys.eventCounts(POWER_EVENTS);
    const d = (t: string) => (counts.get("DC0_H0_VM0")?.[t] ?? 0) - (before.get("DC0_H0_VM0")?.[t] ?? 0);
    expect({ on: d("VmPoweredOnEvent"), off: d("VmPoweredOffEvent") }, "each command applied once").toEqual({ on: 1, off: 2 });
  });

  it("while a power task is under way: the command still succeeds, once", async () => {
    const { counts: before } = await sys.eventCounts(POWER_EVENTS);
    const r = await run("power off DC0_H0_VM1");
    await until("the command to start", async () => (await sys.stateOf(r.id)) === "started", 10_000, sys);
    terminated += (await sys.terminateOtherSessions()).length;
    await succeeded(r);
    const { counts } = await sys.eventCounts(POWER_EVENTS);
    expect((counts.get("DC0_H0_VM1")?.VmPoweredOffEvent ?? 0) - (before.get("DC0_H0_VM1")?.VmPoweredOffEvent ?? 0)).toBe(1);
    expect(sys.crashes()).toEqual([]);
    // The fault was real: the proxy noticed the lost session and logged in again (vsphere client.ts logs it).
    const relogins = sys.svc("vcenter-proxy").lines((j) => /session lost/i.test(String(j.msg ?? ""))).length;
    expect(relogins).toBeGreaterThanOrEqual(4);
    report("session terminated", { terminatedSessions: terminated, proxyRelogins: relogins, commands: 4, userVisibleFailures: 0 });
  });
});
