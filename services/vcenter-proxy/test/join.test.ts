/**
 * A repeat of a changing request still in flight (same endpoint, request id and request: a
 * redelivered command) waits for the first one's answer instead of starting the task again.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { IaasError, ProxyEndpoints } from "@iaas/contracts";
import { createLogger, createMetrics, requestJson, type Metrics } from "@iaas/runtime";
import { VimClient } from "@iaas/vsphere";
import { startNatsServer, startVcsim, type NatsServer, type Vcsim } from "@iaas/testkit";
import { Vcenter } from "@iaas/vcenter-proxy";
import { startProxy, type StartedProxy } from "./helpers.js";

const log = createLogger("test", "silent");

describe("a repeated request joins the one in flight", () => {
  let nats: NatsServer;
  let sim: Vcsim;
  let nc: NatsConnection;
  let client: VimClient;
  let metrics: Metrics;
  let proxy: StartedProxy;
  /** PowerOnVM_Task requests the proxy sent to the simulator. */
  let powerOns = 0;

  beforeAll(async () => {
    // A power-on that takes a second, so a repeat arrives while the first is still running.
    [nats, sim] = await Promise.all([startNatsServer(), startVcsim({ methodDelayMs: { PowerOnVM_Task: 1_000 } })]);
    const counting: typeof fetch = (url, init) => {
      if (String(init?.body).includes("<PowerOnVM_Task")) powerOns++;
      return fetch(url, init);
    };
    client = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password, fetch: counting });
    nc = await connect({ servers: nats.url });
    metrics = createMetrics("vcenter-proxy");
    proxy = await startProxy({ nc, vcenters: new Map([["default", new Vcenter("default", client, log)]]), log, metrics, config: { taskTimeoutMs: 30_000 } });
    await requestJson(nc, ProxyEndpoints.vmPower, { vm: "DC0_H0_VM0", action: "off" }, { timeoutMs: 20_000 });
  });
  afterAll(async () => {
    await proxy?.stop();
    await nc?.close();
    await client?.logout();
    await Promise.all([nats?.dispose(), sim?.stop()]);
  });

  const powerOn = (requestId: string) => requestJson(nc, ProxyEndpoints.vmPower, { vm: "DC0_H0_VM0", action: "on" }, { timeoutMs: 20_000, requestId });

  it("same request id: one PowerOnVM_Task, both get its answer; another id is refused as already on", async () => {
    const before = powerOns;
    const [a, b] = await Promise.all([powerOn("req-join-1"), new Promise((r) => setTimeout(r, 200)).then(() => powerOn("req-join-1"))]);
    expect(powerOns - before).toBe(1);
    expect(a.vm).toMatchObject({ name: "DC0_H0_VM0", powerState: "poweredOn" });
    expect(b).toEqual(a);
    expect(await metrics.registry.getSingleMetricAsString("iaas_vcenter_requests_joined_total")).toMatch(/^iaas_vcenter_requests_joined_total(\{[^}]*\})? 1$/m);

    // Over: a repeat now is a new request (here: a different one), and the VM is already on.
    const err = await powerOn("req-join-2").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IaasError);
    expect((err as IaasError).code).toBe("IAAS_INVALID_POWER_STATE");
    expect(powerOns - before).toBe(2);
  });
});
