/**
 * AcknowledgeAlarm after remediation acted: a vCenter without a working AlarmManager (the simulator
 * lists one, but answers MethodNotFound) is told apart on the first try, with one debug line, and is
 * not asked again; the answer says `unsupported` instead of failing.
 */
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { ProxyEndpoints } from "@iaas/contracts";
import { createLogger, createMetrics, requestJson } from "@iaas/runtime";
import { VimClient } from "@iaas/vsphere";
import { startNatsServer, startVcsim, type NatsServer, type Vcsim } from "@iaas/testkit";
import { Vcenter } from "@iaas/vcenter-proxy";
import { startProxy, type StartedProxy } from "./helpers.js";

describe("acknowledging an alarm where vCenter has no working AlarmManager", () => {
  let nats: NatsServer;
  let sim: Vcsim;
  let nc: NatsConnection;
  let client: VimClient;
  let proxy: StartedProxy;
  /** AcknowledgeAlarm requests the proxy sent to the simulator. */
  let acks = 0;
  const lines: { level: string; msg: string; fault?: string }[] = [];

  beforeAll(async () => {
    [nats, sim] = await Promise.all([startNatsServer(), startVcsim()]);
    const counting: typeof fetch = (url, init) => {
      if (String(init?.body).includes("<AcknowledgeAlarm")) acks++;
      return fetch(url, init);
    };
    client = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password, fetch: counting });
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(l));
        done();
      },
    });
    const log = createLogger("vcenter-proxy", "debug", sink);
    nc = await connect({ servers: nats.url });
    proxy = await startProxy({ nc, vcenters: new Map([["default", new Vcenter("default", client, log)]]), log, metrics: createMetrics("vcenter-proxy"), config: { taskTimeoutMs: 30_000 } });
  });
  afterAll(async () => {
    await proxy?.stop();
    await nc?.close();
    await client?.logout();
    await Promise.all([nats?.dispose(), sim?.stop()]);
  });

  it("the simulator's AlarmManager answers MethodNotFound: unsupported, one debug line, not asked again", async () => {
    // The simulator lists an AlarmManager in its ServiceContent: the detection is by its answer.
    expect(client.serviceContent.alarmManager).toBeDefined();
    const vm = (await requestJson(nc, ProxyEndpoints.vmGet, { vm: "DC0_H0_VM0" }, { timeoutMs: 10_000 })).vm;
    const ask = () => requestJson(nc, ProxyEndpoints.alarmAcknowledge, { alarm: "alarm-6", entity: { type: "VirtualMachine", value: vm.moref } }, { timeoutMs: 10_000 });
    expect(await ask()).toEqual({ acknowledged: false, unsupported: true });
    expect(acks).toBe(1);
    const said = lines.filter((l) => /AlarmManager/.test(l.msg));
    expect(said).toHaveLength(1);
    expect(said[0]).toMatchObject({ level: "debug", fault: "MethodNotFound" });
    expect(await ask()).toEqual({ acknowledged: false, unsupported: true });
    expect(acks).toBe(1);
    expect(lines.filter((l) => /AlarmManager/.test(l.msg))).toHaveLength(1);
  });
});
