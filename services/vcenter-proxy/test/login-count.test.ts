/**
 * Issue 3: a burst of requests never turns into a burst of logins. Counted twice: by the
 * client's own `stats`, and by vCenter, which posts a UserLoginSessionEvent (with the new
 * session's key) for every successful Login.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { ProxyEndpoints } from "@iaas/contracts";
import { createLogger, createMetrics, requestJson } from "@iaas/runtime";
import { VimClient, type VimEvent } from "@iaas/vsphere";
import { startNatsServer, startVcsim, type NatsServer, type Vcsim } from "@iaas/testkit";
import { Vcenter } from "@iaas/vcenter-proxy";
import { loginEvents, startProxy, type StartedProxy } from "./helpers.js";

const log = createLogger("test", "silent");
const BURST = 200;
const VMS = ["DC0_H0_VM0", "DC0_H0_VM1", "DC0_C0_RP0_VM0", "DC0_C0_RP0_VM1"];

describe(`${BURST} concurrent requests and vCenter logins`, () => {
  let nats: NatsServer;
  let sim: Vcsim;
  let observer: VimClient;
  let nc: NatsConnection;
  let client: VimClient;
  let proxy: StartedProxy;
  /** Login events that were there before the proxy started: the simulator's demo launcher and the observer. */
  let baseline: VimEvent[];

  beforeAll(async () => {
    [nats, sim] = await Promise.all([startNatsServer(), startVcsim()]);
    observer = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password, userAgent: "iaas-test-observer" });
    nc = await connect({ servers: nats.url });
    baseline = await loginEvents(observer);
  });
  afterAll(async () => {
    await proxy?.stop();
    await nc?.close();
    await client?.logout().catch(() => undefined);
    await observer?.logout().catch(() => undefined);
    await Promise.all([nats?.dispose(), sim?.stop()]);
  });

  /** Logins since the baseline that are not the observer's own. */
  async function newLogins(): Promise<VimEvent[]> {
    const seen = new Set(baseline.map((e) => e.key));
    return (await loginEvents(observer)).filter((e) => !seen.has(e.key) && e.sessionId !== observer.session!.key);
  }

  /** A mixed burst, all sent before any answer comes back. Each must succeed. */
  async function burst(): Promise<void> {
    const calls = Array.from({ length: BURST }, (_, i) =>
      i % 2 === 0
        ? requestJson(nc, ProxyEndpoints.vmGet, { vm: VMS[(i / 2) % VMS.length]! }, { timeoutMs: 60_000 }).then((r) => expect(r.vm.name).toBe(VMS[(i / 2) % VMS.length]))
        : requestJson(nc, ProxyEndpoints.vmList, {}, { timeoutMs: 60_000 }).then((r) => expect(r.vms.map((v) => v.name)).toEqual(expect.arrayContaining(VMS))),
    );
    const settled = await Promise.allSettled(calls);
    const failed = settled.filter((s): s is PromiseRejectedResult => s.status === "rejected");
    expect(failed.map((f) => String(f.reason)).slice(0, 3)).toEqual([]);
  }

  it("right after a fresh start: exactly one login", async () => {
    // What main.ts does: connect (one Login), then start serving.
    client = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password });
    proxy = await startProxy({ nc, vcenters: new Map([["default", new Vcenter("default", client, log)]]), log, metrics: createMetrics("vcenter-proxy"), config: { taskTimeoutMs: 30_000 } });
    await burst();
    expect(client.stats.logins).toBe(1);
    expect(client.stats.relogins).toBe(0);
    const logins = await newLogins();
    expect(logins.map((e) => e.sessionId)).toEqual([client.session!.key]);
    expect(baseline).toHaveLength(2); // the demo launcher and the observer, subtracted above
  });

  it("right after TerminateSession: exactly one re-login, shared by every request", async () => {
    const before = { ...client.stats };
    const loginsBefore = (await newLogins()).length;
    const oldKey = client.session!.key;
    await observer.sessionManager.terminateSession([oldKey]);
    expect(await observer.sessionManager.sessionIsActive(oldKey, sim.username)).toBe(false);
    await burst();
    expect(client.stats.logins - before.logins).toBe(1);
    expect(client.stats.relogins - before.relogins).toBe(1);
    // Only calls already on the wire when the session died meet NotAuthenticated (about the
    // client's concurrency, 16, plus one freed slot racing the re-login's start); the queued rest
    // wait for the re-login instead of each failing once first (all 200 did before).
    expect(client.stats.faults - before.faults).toBeLessThanOrEqual(2 * 16);
    const logins = (await newLogins()).slice(loginsBefore);
    expect(logins.map((e) => e.sessionId)).toEqual([client.session!.key]);
    expect(client.session!.key).not.toBe(oldKey);
  });
});
