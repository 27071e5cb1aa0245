/**
 * A slow vCenter: power tasks that take longer than the power service waits for them
 * (POWER_TIMEOUT_MS = 1 s, so each request gives up after 6 s). Timeouts are retried with
 * back-off; a task that vCenter finishes within the retry budget ends as one success, one that
 * outlasts it as one IAAS_TIMEOUT failure (retryable, dead-lettered) whose message says vCenter
 * may still complete it, which it then does, once. The load on the proxy stays bounded: never
 * more live requests than POWER_CONCURRENCY, and the requests abandoned by timeouts are counted.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Subscription } from "@nats-io/transport-node";
import { Consumers, ProxyEndpoints, type FinalResult } from "@iaas/contracts";
import { FaultSystem, sleep, until } from "./lib/system.js";
import { POWER_EVENTS, report } from "./lib/rounds.js";

const CONCURRENCY = 3;
const REQUEST_TIMEOUT_MS = 1000 + 5000;
/**
 * The test sees a request a moment after the power service sends it, and never sees an answer to
 * one the service gave up on: the service's slot frees (and the next command's request goes out)
 * when its own 6 s are up, up to this lag before the test's 6 s are. Under load the lag reached
 * hundreds of ms, which counted a fourth live request.
 */
const OBSERVATION_LAG_MS = 1000;

describe("a slow vCenter", () => {
  let sys: FaultSystem;
  beforeAll(async () => {
    sys = await FaultSystem.start({
      name: "slow-vcenter",
      // Power-off: slower than one attempt, faster than the retries. Power-on: slower than all of them,
      // with room to spare: a retry joins the request still in flight in the proxy (same request id),
      // so a power-on that ends while the last delivery still waits is that delivery's success.
      vcsim: { methodDelayMs: { PowerOffVM_Task: 15_000, PowerOnVM_Task: 75_000 } },
      env: { power: { POWER_TIMEOUT_MS: "1000", POWER_CONCURRENCY: String(CONCURRENCY) } },
    });
    await sys.createVms(["slow-a", "slow-b"]);
  });
  afterAll(async () => {
    await sys?.dispose();
  });

  it("timeouts are retried and reported, every effect happens once, in-flight work stays bounded", async () => {
    // Every vm-power request the proxy gets, and its answer (a plain subscription sees copies).
    const seen = new Map<string, { at: number; answered: boolean }>();
    const subs: Subscription[] = [];
    subs.push(
      sys.nc.subscribe(ProxyEndpoints.vmPower.subject, {
        callback: (_e, m) => {
          if (!m.reply) return;
          const reply = m.reply;
          seen.set(reply, { at: Date.now(), answered: false });
          subs.push(
            sys.nc.subscribe(reply, {
              max: 1,
              callback: () => {
                seen.get(reply)!.answered = true;
              },
            }),
          );
        },
      }),
    );
    await sys.nc.flush();
    let maxLive = 0;
    let maxAbandoned = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const now = Date.now();
        const open = [...seen.values()].filter((s) => !s.answered);
        maxLive = Math.max(maxLive, open.filter((s) => now - s.at < REQUEST_TIMEOUT_MS - OBSERVATION_LAG_MS).length);
        maxAbandoned = Math.max(maxAbandoned, open.filter((s) => now - s.at >= REQUEST_TIMEOUT_MS).length);
        await sleep(50);
      }
    })();

    const { counts: before } = await sys.eventCounts(POWER_EVENTS);
    const offs = await Promise.all(["DC0_H0_VM0", "DC0_H0_VM1"].map((vm) => sys.slash(`power off ${vm}`)));
    const ons = await Promise.all(["slow-a", "slow-b"].map((vm) => sys.slash(`power on ${vm}`)));
    for (const r of [...offs, ...ons]) expect(r.http?.body).toContain(r.id);

    let timeoutMessage = "";
    const finals = await sys.waitFinals([...offs, ...ons].map((r) => r.id), 150_000);
    const one = (id: string) => {
      const f = finals.get(id)!;
      expect(f, `one final result for ${id}`).toHaveLength(1);
      return f[0]!;
    };
    for (const r of offs) expect(one(r.id).status, "a power-off vCenter finished within the retries").toBe("succeeded");
    for (const r of ons) {
      const f = one(r.id) as Extract<FinalResult, { status: "failed" }>;
      expect(f.status).toBe("failed");
      expect(f.error).toMatchObject({ code: "IAAS_TIMEOUT", retryable: true });
      // The wording is the power service's (see docs/reliability.md: it names a NATS subject today).
      expect(f.error.message.length).toBeGreaterThan(0);
      timeoutMessage = f.error.message;
    }
    await sys.deadLetters.read();
    for (const r of ons) {
      expect(sys.deadLetters.items.filter((d) => d.data.command.id === r.id).map((d) => d.data.deliveries)).toEqual([Consumers.power.maxDeliver]);
      const post = await sys.slack.waitFor(() => sys.finalPosts(r.responseUrl)[0]);
      expect(post).toMatch(/failed/);
      expect(post).toContain(r.id);
    }

    // vCenter finishes what it was asked, once per VM, however many times the request was repeated.
    await until("the slow power-ons to finish in vCenter", async () => (await sys.powerStateOf("slow-a")) === "poweredOn" && (await sys.powerStateOf("slow-b")) === "poweredOn", 120_000, sys);
    const { counts } = await sys.eventCounts(POWER_EVENTS);
    const delta = (vm: string, t: string) => (counts.get(vm)?.[t] ?? 0) - (before.get(vm)?.[t] ?? 0);
    expect({ a: delta("slow-a", "VmPoweredOnEvent"), b: delta("slow-b", "VmPoweredOnEvent"), v0: delta("DC0_H0_VM0", "VmPoweredOffEvent"), v1: delta("DC0_H0_VM1", "VmPoweredOffEvent") }).toEqual({ a: 1, b: 1, v0: 1, v1: 1 });
    sampling = false;
    await sampler;
    for (const s of subs) s.unsubscribe();

    // Bounded: the power service never has more requests outstanding than its concurrency ...
    expect(maxLive).toBeLessThanOrEqual(CONCURRENCY);
    // ... and the requests it gave up on (still running in the proxy) are at most one per delivery.
    expect(maxAbandoned).toBeLessThanOrEqual(4 * Consumers.power.maxDeliver);
    const requests = seen.size;
    expect(sys.crashes()).toEqual([]);
    report("slow vCenter", { commands: 4, succeeded: offs.length, timedOut: ons.length, proxyRequests: requests, maxLiveRequests: maxLive, maxAbandonedRequests: maxAbandoned, appliedTwice: 0, timeoutMessage: JSON.stringify(timeoutMessage) });
  });
});
