import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Buckets, eventMsgId, normalizeVsphereEvent } from "@iaas/contracts";
import { BaseEnvSchema, connectNats, createMetrics, ensureStreams, jetstreamFor, loadConfig, openBucket, type Jet, type KV, type NatsConnection } from "@iaas/runtime";
import { startNatsServer, startVcsim, waitUntil, type NatsServer, type Vcsim } from "@iaas/testkit";
import { VimClient, type AlarmStatusChangedEventSpec } from "@iaas/vsphere";
import { Vcenter } from "@iaas/vcenter-proxy";
// Not a dependency of the root package: imported by path, with the bridge tests' readers of the stream.
import { buildPoller, type Bridge, type Poller, type PollerConfig } from "../../services/veba-bridge/src/mod.js";
import { log, purgeEvents, send, storedEvents } from "../../services/veba-bridge/test/helpers.js";
import { startBridge, startProxy } from "./harness.js";

let nats: NatsServer;
let sim: Vcsim;
let nc: NatsConnection;
let jet: Jet;
let checkpoints: KV;
let vc: VimClient;
let stopProxy: () => Promise<void>;
let bridge: Bridge;

const config = (over: Partial<PollerConfig> = {}): PollerConfig => ({ source: sim.url, intervalMs: 50, batch: 100, start: "latest", requestTimeoutMs: 10_000, publishTimeoutMs: 2_000, ...over });
const poller = (over: Partial<PollerConfig> = {}): Poller => buildPoller({ nc, jet, checkpoints, log, metrics: createMetrics("veba-bridge"), config: config(over) });

async function alarm(vm: string, to = "red"): Promise<number> {
  const ref = (await vc.searchIndex.findByInventoryPath(`/DC0/vm/${vm}`))!;
  const spec: AlarmStatusChangedEventSpec = {
    _type: "AlarmStatusChangedEvent",
    datacenter: { name: "DC0", datacenter: (await vc.searchIndex.findByInventoryPath("/DC0"))! },
    vm: { name: vm, vm: ref },
    fullFormattedMessage: `Alarm 'VM CPU Usage' on ${vm} changed to ${to}`,
    alarm: { name: "VM CPU Usage", alarm: { type: "Alarm", value: "alarm-6" } },
    source: { name: "Datacenters", entity: vc.serviceContent.rootFolder },
    entity: { name: vm, entity: ref },
    from: "green",
    to,
  };
  await vc.eventManager.postEvent(spec);
  return latestKey();
}

async function latestKey(): Promise<number> {
  return Math.max(...(await vc.eventManager.queryEvents({ maxCount: 1000 })).map((e) => e.key));
}

async function checkpoint(source = sim.url): Promise<number | undefined> {
  const e = await checkpoints.get(`source.${Buffer.from(source).toString("base64url")}`);
  return e?.operation === "PUT" ? e.json<{ afterKey: number }>().afterKey : undefined;
}

beforeAll(async () => {
  [nats, sim] = await Promise.all([startNatsServer(), startVcsim()]);
  nc = await connectNats(loadConfig(BaseEnvSchema, { NATS_URL: nats.url }), "veba-bridge", log);
  jet = await jetstreamFor(nc);
  await ensureStreams(jet.jsm, ["events"], log);
  checkpoints = await openBucket(nc, "eventPoller");
  const proxyNc = await connectNats(loadConfig(BaseEnvSchema, { NATS_URL: nats.url }), "vcenter-proxy", log);
  const client = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password });
  const proxy = await startProxy({ nc: proxyNc, vcenters: new Map([["default", new Vcenter("default", client, log)]]), log, metrics: createMetrics("vcenter-proxy"), config: { taskTimeoutMs: 30_000 } });
  stopProxy = async () => {
    await proxy.stop();
    await proxyNc.close();
    await client.logout();
  };
  bridge = await startBridge({ nc, jet, log, metrics: createMetrics("veba-bridge"), config: { host: "127.0.0.1", port: 0, bodyLimit: 1024 * 1024, publishTimeoutMs: 2_000, auth: {} } });
  vc = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password });
});

afterAll(async () => {
  await bridge?.stop();
  await vc?.logout().catch(() => undefined);
  await stopProxy?.();
  await nc?.close();
  await Promise.all([nats?.dispose(), sim?.stop()]);
});

beforeEach(async () => {
  await purgeEvents(jet);
  await checkpoints.purge(`source.${Buffer.from(sim.url).toString("base64url")}`);
});

describe("event poller", () => {
  it("a first start begins at vCenter's newest event: history is not replayed", async () => {
    await alarm("DC0_H0_VM0");
    const latest = await latestKey();
    const r = await poller().pollOnce();
    expect(r).toEqual({ published: 0, checkpoint: latest });
    expect(await storedEvents(jet)).toEqual([]);
    expect(await checkpoint()).toBe(latest);
  });

  it("POLLER_START=oldest replays what vCenter still has", async () => {
    const latest = await alarm("DC0_H0_VM0");
    const p = poller({ start: "oldest" });
    const r = await p.pollOnce();
    expect(r.checkpoint).toBe(latest);
    const keys = (await storedEvents(jet)).map((s) => s.event.key);
    expect(keys).toContain(latest);
    expect(keys).toEqual([...keys].sort((a, b) => a - b));
  });

  it("publishes an alarm as the bridge would: its subject, via poller, Nats-Msg-Id source#key#class#created, data the normalizer reads", async () => {
    const p = poller();
    await p.pollOnce();
    const key = await alarm("DC0_H0_VM0");
    expect((await p.pollOnce()).checkpoint).toBe(key);
    const stored = (await storedEvents(jet)).find((s) => s.event.key === key)!;
    expect(stored.subject).toBe("vsphere.event.AlarmStatusChangedEvent");
    expect(stored.msgId).toBe(`${sim.url}#${key}#AlarmStatusChangedEvent#${stored.event.time}`);
    expect(stored.msgId).toBe(eventMsgId(stored.event));
    expect(stored.event).toMatchObject({ id: String(key), source: sim.url, eventClass: "AlarmStatusChangedEvent", key, via: "poller" });
    expect(stored.event.ceType).toBeUndefined();
    // VEBA's PascalCase, so the two paths carry the same shape.
    expect(stored.event.data).toMatchObject({ Key: key, Alarm: { Name: "VM CPU Usage", Alarm: { Type: "Alarm", Value: "alarm-6" } }, To: "red" });
    expect(normalizeVsphereEvent(stored.event)).toMatchObject({ alarmName: "VM CPU Usage", to: "red", from: "green", entity: { type: "VirtualMachine", name: "DC0_H0_VM0" }, vm: { name: "DC0_H0_VM0" } });
  });

  it("reads every event logged between two polls, in key order", async () => {
    const p = poller();
    await p.pollOnce();
    const keys = [await alarm("DC0_H0_VM0"), await alarm("DC0_H0_VM1"), await alarm("DC0_C0_RP0_VM0", "green")];
    await p.pollOnce();
    const stored = (await storedEvents(jet)).map((s) => s.event.key);
    expect(stored).toEqual(keys);
  });

  it("pages through more events than one request returns", async () => {
    const p = poller({ batch: 2 });
    await p.pollOnce();
    const keys: number[] = [];
    for (let i = 0; i < 5; i++) keys.push(await alarm("DC0_H0_VM0"));
    const r = await p.pollOnce();
    expect(r).toEqual({ published: 5, checkpoint: keys.at(-1) });
    expect((await storedEvents(jet)).map((s) => s.event.key)).toEqual(keys);
  });

  it("survives a restart: a new poller resumes after the last key published, nothing twice", async () => {
    const first = poller();
    await first.pollOnce();
    const a = await alarm("DC0_H0_VM0");
    await first.pollOnce();
    const b = await alarm("DC0_H0_VM0");
    const c = await alarm("DC0_H0_VM1");
    const second = poller();
    expect(await second.pollOnce()).toEqual({ published: 2, checkpoint: c });
    const stored = await storedEvents(jet);
    expect(stored.map((s) => s.event.key)).toEqual([a, b, c]);
  });

  it("never moves the checkpoint past an event JetStream did not store; the next poll publishes it", async () => {
    const p = poller();
    await p.pollOnce();
    const before = await checkpoint();
    const key = await alarm("DC0_H0_VM0");
    await jet.jsm.streams.delete("VSPHERE_EVENTS");
    try {
      await expect(p.pollOnce()).rejects.toMatchObject({ code: "IAAS_UNAVAILABLE" });
      expect(await checkpoint()).toBe(before);
    } finally {
      await ensureStreams(jet.jsm, ["events"], log);
    }
    expect(await p.pollOnce()).toEqual({ published: 1, checkpoint: key });
    expect((await storedEvents(jet)).map((s) => s.event.key)).toEqual([key]);
  });

  it("an event that came by VEBA and by the poller is stored once", async () => {
    const p = poller();
    await p.pollOnce();
    const key = await alarm("DC0_H0_VM0");
    await p.pollOnce();
    const polled = (await storedEvents(jet)).find((s) => s.event.key === key)!;
    const a = await send(`http://127.0.0.1:${bridge.port}`, {
      headers: { "content-type": "application/json", "ce-specversion": "1.0", "ce-id": "veba-1", "ce-source": sim.url, "ce-type": "com.vmware.vsphere.AlarmStatusChangedEvent.v0" },
      body: JSON.stringify(polled.event.data),
    });
    expect(a.status).toBe(200);
    expect(a.json).toMatchObject({ accepted: 0, duplicates: 1 });
    expect((await storedEvents(jet)).filter((s) => s.event.key === key)).toHaveLength(1);
  });

  it("runs on its own timer once started, and stops", async () => {
    const p = poller();
    await p.pollOnce();
    p.start();
    try {
      const key = await alarm("DC0_H0_VM1");
      await waitUntil(`event ${key} published by the timer`, async () => (await storedEvents(jet)).some((s) => s.event.key === key));
    } finally {
      await p.stop();
    }
    // Stopped: an alarm logged now is neither read nor published by it. Another poller on its own
    // timer (and its own source) serves as the clock: once it has polled a few times after the
    // alarm, the stopped one would have polled too had its timer survived stop().
    const after = await checkpoint();
    const key = await alarm("DC0_H0_VM0");
    const clockMetrics = createMetrics("veba-bridge");
    const clock = buildPoller({ nc, jet, checkpoints, log, metrics: clockMetrics, config: config({ source: "https://clock.test/sdk" }) });
    clock.start();
    try {
      await waitUntil("the other poller to poll five times", async () => ((await clockMetrics.registry.getSingleMetric("iaas_poller_polls_total")?.get())?.values.reduce((s, v) => s + v.value, 0) ?? 0) >= 5);
    } finally {
      await clock.stop();
    }
    // Its metrics name its vCenter (the default one: no `vcenter` in its config).
    const polls = (await clockMetrics.registry.getSingleMetric("iaas_poller_polls_total")!.get()).values;
    expect(polls.length).toBeGreaterThan(0);
    expect(new Set(polls.map((v) => v.labels.vcenter))).toEqual(new Set(["default"]));
    expect(await checkpoint()).toBe(after);
    expect((await storedEvents(jet)).filter((s) => s.event.source === sim.url && s.event.key === key)).toEqual([]);
  });

  it("keeps one checkpoint per vCenter source, in its own bucket", async () => {
    expect(Buckets.eventPoller.name).toBe("iaas_event_poller");
    const other = "https://vcenter-b.example.com/sdk";
    await poller({ source: other }).pollOnce();
    expect(await checkpoint(other)).toBe(await latestKey());
  });
});
