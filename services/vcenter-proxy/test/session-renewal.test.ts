/**
 * Issue 3: the proxy keeps working when vCenter forgets its session, and callers never see it.
 * Two ways a session dies: it sits idle past vCenter's timeout (the proxy's keep-alive is off
 * here so that it can), or an administrator terminates it from another session.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { ProxyEndpoints } from "@iaas/contracts";
import { createLogger, createMetrics, requestJson } from "@iaas/runtime";
import { VimClient, listVmSummaries } from "@iaas/vsphere";
import { startNatsServer, startVcsim, waitUntil, type NatsServer, type Vcsim } from "@iaas/testkit";
import { Vcenter } from "@iaas/vcenter-proxy";
import { startProxy } from "./helpers.js";

const log = createLogger("test", "silent");

interface Rig {
  sim: Vcsim;
  nc: NatsConnection;
  /** The proxy's own client: its `session` and `stats` are what the assertions read. */
  client: VimClient;
  /** A second session, as an administrator's would be. */
  observer: VimClient;
  stop(): Promise<void>;
}

async function startRig(nats: NatsServer, sim: Vcsim): Promise<Rig> {
  // keepAliveMs 0: nothing but the test's own requests touch the proxy's session.
  const client = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password, keepAliveMs: 0 });
  // The observer must outlive the idle timeout itself, so it keeps its own session alive.
  const observer = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password, keepAliveMs: 250, userAgent: "iaas-test-observer" });
  const nc = await connect({ servers: nats.url });
  const proxy = await startProxy({ nc, vcenters: new Map([["default", new Vcenter("default", client, log)]]), log, metrics: createMetrics("vcenter-proxy"), config: { taskTimeoutMs: 30_000 } });
  return {
    sim,
    nc,
    client,
    observer,
    stop: async () => {
      await proxy.stop();
      await nc.close();
      client.close();
      await observer.logout().catch(() => undefined);
    },
  };
}

const vmGet = (nc: NatsConnection, vm: string) => requestJson(nc, ProxyEndpoints.vmGet, { vm }, { timeoutMs: 20_000 });
const vmPower = (nc: NatsConnection, vm: string, action: "on" | "off") => requestJson(nc, ProxyEndpoints.vmPower, { vm, action }, { timeoutMs: 20_000 });

/** Whether vCenter still knows `key`, asked from the observer's session. */
const isActive = (rig: Rig, key: string) => rig.observer.sessionManager.sessionIsActive(key, rig.sim.username);

let nats: NatsServer;
beforeAll(async () => {
  nats = await startNatsServer();
});
afterAll(async () => {
  await nats?.dispose();
});

describe("an idle session that vCenter expired", () => {
  let rig: Rig;
  beforeAll(async () => {
    rig = await startRig(nats, await startVcsim({ sessionIdleTimeoutSeconds: 1 }));
  });
  afterAll(async () => {
    await rig?.stop();
    await rig?.sim.stop();
  });

  /** Waits (no request from the proxy meanwhile) until the simulator has dropped the proxy's session. */
  async function idleUntilExpired(): Promise<string> {
    const key = rig.client.session!.key;
    expect(await isActive(rig, key)).toBe(true);
    await waitUntil("the simulator to expire the proxy's idle session", async () => !(await isActive(rig, key)), 20_000);
    return key;
  }

  it("vm-get after the expiry: the caller gets the VM; the proxy logged in again once", async () => {
    const before = { ...rig.client.stats };
    const oldKey = await idleUntilExpired();
    const r = await vmGet(rig.nc, "DC0_H0_VM1");
    expect(r.vm).toMatchObject({ name: "DC0_H0_VM1", powerState: "poweredOn" });
    expect(rig.client.stats.relogins - before.relogins).toBe(1);
    expect(rig.client.stats.logins - before.logins).toBe(1);
    expect(rig.client.session!.key).not.toBe(oldKey);
    expect(await isActive(rig, rig.client.session!.key)).toBe(true);
  });

  it("vm-power after the expiry: the VM is powered off and the caller sees no error", async () => {
    const before = { ...rig.client.stats };
    await idleUntilExpired();
    const r = await vmPower(rig.nc, "DC0_H0_VM1", "off");
    expect(r.vm.powerState).toBe("poweredOff");
    expect((await listVmSummaries(rig.observer)).find((v) => v.name === "DC0_H0_VM1")?.powerState).toBe("poweredOff");
    expect(rig.client.stats.relogins - before.relogins).toBe(1);
  });
});

describe("a session terminated from another session", () => {
  let rig: Rig;
  beforeAll(async () => {
    // No idle timeout here: the only way this session can end is the TerminateSession below.
    rig = await startRig(nats, await startVcsim());
  });
  afterAll(async () => {
    await rig?.stop();
    await rig?.sim.stop();
  });

  async function terminateProxySession(): Promise<string> {
    const key = rig.client.session!.key;
    await rig.observer.sessionManager.terminateSession([key]);
    expect(await isActive(rig, key)).toBe(false);
    return key;
  }

  it("vm-get right after TerminateSession succeeds, on a new session", async () => {
    expect((await vmGet(rig.nc, "DC0_H0_VM0")).vm.name).toBe("DC0_H0_VM0");
    const before = { ...rig.client.stats };
    const oldKey = await terminateProxySession();
    const r = await vmGet(rig.nc, "DC0_H0_VM0");
    expect(r.vm).toMatchObject({ name: "DC0_H0_VM0", path: "/DC0/vm/DC0_H0_VM0" });
    expect(rig.client.stats.relogins - before.relogins).toBe(1);
    expect(rig.client.session!.key).not.toBe(oldKey);
  });

  it("vm-power right after TerminateSession powers the VM off and on", async () => {
    await terminateProxySession();
    const before = { ...rig.client.stats };
    expect((await vmPower(rig.nc, "DC0_C0_RP0_VM0", "off")).vm.powerState).toBe("poweredOff");
    await terminateProxySession();
    expect((await vmPower(rig.nc, "DC0_C0_RP0_VM0", "on")).vm.powerState).toBe("poweredOn");
    expect(rig.client.stats.relogins - before.relogins).toBe(2);
  });
});
