import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { eventMsgId, normalizeEventData, normalizeVsphereEvent, ServiceNames } from "@iaas/contracts";
import { camelize, fixture, loadFixtures } from "./fixtures.js";
import { batch, binary, envelopeFor, purgeEvents, send, sendEndless, startWorld, storedEvents, structured, uniqueSource, type Answer, type World } from "./helpers.js";

let w: World;

beforeAll(async () => {
  w = await startWorld();
});
afterAll(async () => {
  await w?.close();
});
beforeEach(async () => {
  await purgeEvents(w.jet);
});

const fixtures = loadFixtures();
const dataFixtures = fixtures.filter((f) => !f.envelope);
const envelopes = fixtures.filter((f) => f.envelope);

describe("binary mode", () => {
  it("router family: ce-type com.vmware.event.router/event with the class in ce-subject", async () => {
    const f = fixture("VmPoweredOffEvent.data.json");
    const source = uniqueSource();
    const req = binary(f, { type: "com.vmware.event.router/event", subject: "VmPoweredOffEvent", source, id: "08179137-b8e0-4973-b05f-8f212bf5003b" });
    const a = await send(w.url, req);
    expect(a.status).toBe(200);
    expect(a.json).toEqual({
      accepted: 1,
      duplicates: 0,
      events: [{ id: "08179137-b8e0-4973-b05f-8f212bf5003b", eventClass: "VmPoweredOffEvent", key: 2817273, subject: "vsphere.event.VmPoweredOffEvent", seq: expect.any(Number), duplicate: false }],
    });
    const [s, ...rest] = await storedEvents(w.jet);
    expect(rest).toEqual([]);
    expect(s!.subject).toBe("vsphere.event.VmPoweredOffEvent");
    expect(s!.msgId).toBe(`${source}#2817273#VmPoweredOffEvent#2021-05-17T22:01:36.496Z`);
    expect(s!.event).toMatchObject({
      id: "08179137-b8e0-4973-b05f-8f212bf5003b",
      source,
      eventClass: "VmPoweredOffEvent",
      key: 2817273,
      time: "2021-05-17T22:01:36.496Z",
      via: "veba",
      ceType: "com.vmware.event.router/event",
      data: f.data,
    });
    expect(normalizeVsphereEvent(s!.event)).toMatchObject({ vm: { type: "VirtualMachine", value: "vm-11099", name: "K8s-User-Group-Test" } });
  });

  it("Tanzu family: ce-type com.vmware.vsphere.<Class>.v0", async () => {
    const f = fixture("AlarmStatusChangedEvent.datastore-usage-on-disk.data.json");
    const a = await send(w.url, binary(f, { type: "com.vmware.vsphere.AlarmStatusChangedEvent.v0" }));
    expect(a.status).toBe(200);
    const [s] = await storedEvents(w.jet);
    expect(s!.subject).toBe("vsphere.event.AlarmStatusChangedEvent");
    expect(normalizeVsphereEvent(s!.event)).toMatchObject({
      eventClass: "AlarmStatusChangedEvent",
      key: 952175,
      alarmName: "Datastore usage on disk",
      from: "gray",
      to: "yellow",
      entity: { type: "Datastore", value: "datastore-60", name: "ProdDatastore1" },
      datastore: { type: "Datastore", value: "datastore-60", name: "ProdDatastore1" },
    });
  });

  it.each(dataFixtures.map((f) => [f.file, f] as const))("every data sample is stored under its class: %s", async (_file, f) => {
    const a = await send(w.url, binary(f));
    expect(a.status).toBe(200);
    const stored = await storedEvents(w.jet);
    expect(stored.map((s) => s.subject)).toEqual([`vsphere.event.${f.eventClass}`]);
    expect(normalizeVsphereEvent(stored[0]!.event)).toEqual(normalizeEventData(f.eventClass, f.data));
  });

  it("an EventEx type id keeps its dots as subject levels", async () => {
    const f = fixture("EventEx.com.vmware.vc.HA.ClusterFailoverActionCompletedEvent.data.json");
    expect((await send(w.url, binary(f, { type: "com.vmware.event.router/eventex", subject: f.eventClass }))).status).toBe(200);
    const [s] = await storedEvents(w.jet);
    expect(s!.subject).toBe("vsphere.event.com.vmware.vc.HA.ClusterFailoverActionCompletedEvent");
    expect(s!.event.eventClass).toBe("com.vmware.vc.HA.ClusterFailoverActionCompletedEvent");
  });

  it("tolerates camelCase data, stores it as sent and normalizes it like PascalCase", async () => {
    const f = fixture("AlarmStatusChangedEvent.host-cpu-cluster-alarm.router-structured-ce.json");
    const data = camelize(f.data) as Record<string, unknown>;
    const a = await send(w.url, binary(f, { type: "com.vmware.event.router/event", subject: "AlarmStatusChangedEvent", data }));
    expect(a.status).toBe(200);
    const [s] = await storedEvents(w.jet);
    expect(s!.event.key).toBe(15158);
    expect(s!.event.time).toBe("2021-11-05T13:02:32.966Z");
    expect(s!.event.data).toEqual(data);
    expect(normalizeVsphereEvent(s!.event)).toEqual(normalizeEventData(f.eventClass, f.data));
  });
});

describe("structured mode", () => {
  it.each(envelopes.map((f) => [f.file, f] as const))("the real envelope %s, as it is", async (_file, f) => {
    const env = f.envelope!;
    const a = await send(w.url, structured(env));
    expect(a.status).toBe(200);
    expect(a.json).toMatchObject({ accepted: 1, duplicates: 0 });
    const stored = await storedEvents(w.jet);
    expect(stored).toHaveLength(1);
    const s = stored[0]!;
    expect(s.subject).toBe(`vsphere.event.${f.eventClass}`);
    expect(s.msgId).toBe(`${env.source}#${f.data.Key}#${f.eventClass}#${new Date(f.data.CreatedTime as string).toISOString()}`);
    expect(s.event).toMatchObject({ id: env.id, source: env.source, eventClass: f.eventClass, key: f.data.Key, ceType: env.type, via: "veba", data: env.data });
    // vCenter's CreatedTime, not the router's send time.
    expect(s.event.time).toBe(new Date(f.data.CreatedTime as string).toISOString());
    expect(normalizeVsphereEvent(s.event)).toEqual(normalizeEventData(f.eventClass, f.data));
  });

  it("router family and Tanzu family both land on vsphere.event.<Class>", async () => {
    const router = fixture("VmReconfiguredEvent.router-structured-ce.json").envelope!;
    const tanzu = fixture("DrsVmPoweredOnEvent.tanzu-structured-ce.json").envelope!;
    expect((await send(w.url, structured({ ...router, source: uniqueSource() }))).status).toBe(200);
    expect((await send(w.url, structured({ ...tanzu, source: uniqueSource() }))).status).toBe(200);
    expect((await storedEvents(w.jet)).map((s) => s.subject)).toEqual(["vsphere.event.VmReconfiguredEvent", "vsphere.event.DrsVmPoweredOnEvent"]);
  });
});

describe("batch mode", () => {
  it("stores every event of the batch on its subject and answers once all are acked", async () => {
    const items = [
      ...envelopes.map((f) => ({ ...f.envelope!, source: uniqueSource() })),
      envelopeFor(fixture("VmMigratedEvent.data.json")),
      envelopeFor(fixture("EventEx.com.vmware.cis.tagging.attach.data.json")),
    ];
    const a = await send(w.url, batch(items));
    expect(a.status).toBe(200);
    expect(a.json.accepted).toBe(items.length);
    expect(a.json.duplicates).toBe(0);
    const stored = await storedEvents(w.jet);
    expect(stored.map((s) => s.subject).sort()).toEqual(
      [
        "vsphere.event.AlarmStatusChangedEvent",
        "vsphere.event.DrsVmPoweredOnEvent",
        "vsphere.event.VmPoweredOffEvent",
        "vsphere.event.VmReconfiguredEvent",
        "vsphere.event.VmMigratedEvent",
        "vsphere.event.com.vmware.cis.tagging.attach",
      ].sort(),
    );
    const migrated = stored.find((s) => s.subject === "vsphere.event.VmMigratedEvent")!;
    expect(normalizeVsphereEvent(migrated.event)).toMatchObject({ vm: { value: "vm-15161", name: "TestVM-01" }, datastore: { value: "datastore-15160" } });
  });

  it("one bad event refuses the whole batch and stores nothing", async () => {
    const good = envelopeFor(fixture("VmRemovedEvent.data.json"));
    const bad = { ...envelopeFor(fixture("VmPoweredOffEvent.data.json")), data: { ChainId: 1 } };
    const a = await send(w.url, batch([good, bad]));
    expect(a.status).toBe(400);
    expect(a.json.error).toMatchInlineSnapshot(`
      {
        "code": "IAAS_BAD_REQUEST",
        "message": "event 2 of 2: data.Key is missing or not a non-negative integer (every vCenter event has one)",
        "reason": "missing_key",
      }
    `);
    expect(await storedEvents(w.jet)).toEqual([]);
  });

  it("the same event twice in one batch is stored once", async () => {
    const e = envelopeFor(fixture("VmRemovedEvent.data.json"));
    const a = await send(w.url, batch([e, { ...e, id: randomUUID() }]));
    expect(a.status).toBe(200);
    expect(a.json).toMatchObject({ accepted: 1, duplicates: 1 });
    expect(await storedEvents(w.jet)).toHaveLength(1);
  });
});

describe("dedupe on the event's identity: source, data.Key, class and CreatedTime", () => {
  it("the same event twice: both answered 2xx, one message in the stream", async () => {
    const f = fixture("DrsVmPoweredOnEvent.data.json");
    const req = binary(f);
    const first = await send(w.url, req);
    const second = await send(w.url, { headers: { ...req.headers, "ce-id": randomUUID() }, body: req.body });
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(first.json.events[0].duplicate).toBe(false);
    expect(second.json).toMatchObject({ accepted: 0, duplicates: 1, events: [{ duplicate: true }] });
    expect(await storedEvents(w.jet)).toHaveLength(1);
  });

  it("is the same event whichever mode or type family brought it", async () => {
    const f = fixture("VmPoweredOffEvent.data.json");
    const source = uniqueSource();
    expect((await send(w.url, binary(f, { source, type: "com.vmware.event.router/event", subject: "VmPoweredOffEvent" }))).json.duplicates).toBe(0);
    expect((await send(w.url, structured(envelopeFor(f, source)))).json.duplicates).toBe(1);
    expect(await storedEvents(w.jet)).toHaveLength(1);
  });

  it("an earlier fake of another class carrying a real alarm's Key does not swallow the alarm", async () => {
    const alarm = fixture("AlarmStatusChangedEvent.datastore-usage-on-disk.data.json");
    const source = uniqueSource();
    const fake = { Key: alarm.data.Key, CreatedTime: "2020-01-01T00:00:00Z", UserName: "attacker", FullFormattedMessage: "User logged in" };
    expect((await send(w.url, binary(alarm, { source, type: "com.vmware.vsphere.UserLoginSessionEvent.v0", data: fake }))).json.accepted).toBe(1);
    // Same class and Key, another time: also not the real one.
    expect((await send(w.url, binary(alarm, { source, data: { ...alarm.data, CreatedTime: "2020-01-01T00:00:00Z" } }))).json.accepted).toBe(1);
    const real = await send(w.url, binary(alarm, { source }));
    expect(real.json).toMatchObject({ accepted: 1, duplicates: 0 });
    expect(await storedEvents(w.jet)).toHaveLength(3);
  });

  it("without a CreatedTime, the CloudEvent id tells a retry from another event", async () => {
    const f = fixture("VmPoweredOffEvent.data.json");
    const { CreatedTime: _t, ...data } = f.data;
    const source = uniqueSource();
    const req = binary(f, { source, data, id: "veba-own-id-1" });
    expect((await send(w.url, req)).json.accepted).toBe(1);
    expect((await send(w.url, req)).json.duplicates).toBe(1);
    expect((await send(w.url, binary(f, { source, data, id: "veba-own-id-2" }))).json.accepted).toBe(1);
    const stored = await storedEvents(w.jet);
    expect(stored.map((x) => x.msgId)).toEqual([`${source}#${f.data.Key}#VmPoweredOffEvent#id:veba-own-id-1`, `${source}#${f.data.Key}#VmPoweredOffEvent#id:veba-own-id-2`]);
    expect(stored.map((x) => x.msgId)).toEqual(stored.map((x) => eventMsgId(x.event)));
  });

  it("the same key from another vCenter is another event", async () => {
    const f = fixture("VmPoweredOffEvent.data.json");
    await send(w.url, binary(f));
    await send(w.url, binary(f));
    expect(await storedEvents(w.jet)).toHaveLength(2);
  });
});

describe("refused requests: 4xx, a one-line coded reason, nothing stored", () => {
  const f = fixture("VmPoweredOffEvent.data.json");

  async function refused(a: Answer, status: number, reason: string): Promise<void> {
    expect(a.status).toBe(status);
    expect(a.headers["content-type"]).toBe("application/json");
    expect(a.json.error.reason).toBe(reason);
    expect(a.json.error.code).toMatch(/^IAAS_[A-Z_]+$/);
    expect(a.json.error.message).not.toMatch(/[\r\n]/);
    expect(a.text.trim().split("\n")).toHaveLength(1);
    expect(await storedEvents(w.jet)).toEqual([]);
  }

  it("bad JSON, binary and structured", async () => {
    const req = binary(f);
    await refused(await send(w.url, { headers: req.headers, body: '{"Key": 1,' }), 400, "bad_json");
    await refused(await send(w.url, { headers: structured({}).headers, body: "{not json" }), 400, "bad_json");
    await refused(await send(w.url, { headers: batch([]).headers, body: "[{" }), 400, "bad_json");
  });

  it("no id", async () => {
    const req = binary(f);
    delete req.headers["ce-id"];
    const a = await send(w.url, req);
    await refused(a, 400, "missing_attribute");
    expect(a.json.error.message).toMatchInlineSnapshot(`"the ce-id header is missing or empty"`);
    const { id: _id, ...noId } = envelopeFor(f);
    await refused(await send(w.url, structured(noId)), 400, "missing_attribute");
    await refused(await send(w.url, structured({ ...envelopeFor(f), id: "" })), 400, "missing_attribute");
  });

  it("specversion 0.3 (or none)", async () => {
    const req = binary(f);
    const a = await send(w.url, { headers: { ...req.headers, "ce-specversion": "0.3" }, body: req.body });
    await refused(a, 400, "bad_specversion");
    expect(a.json.error.message).toMatchInlineSnapshot(`"the ce-specversion header must be "1.0", not "0.3""`);
    await refused(await send(w.url, structured({ ...envelopeFor(f), specversion: "0.3" })), 400, "bad_specversion");
    await refused(await send(w.url, structured({ ...envelopeFor(f), specversion: 1 })), 400, "bad_specversion");
    const { specversion: _v, ...none } = envelopeFor(f);
    await refused(await send(w.url, structured(none)), 400, "bad_specversion");
  });

  it("missing data.Key", async () => {
    const { Key: _k, ...noKey } = f.data;
    await refused(await send(w.url, binary(f, { data: noKey })), 400, "missing_key");
    await refused(await send(w.url, binary(f, { data: { ...f.data, Key: "abc" } })), 400, "missing_key");
    await refused(await send(w.url, structured({ ...envelopeFor(f), data: noKey })), 400, "missing_key");
  });

  it("a type with no class, an unknown type, a class unfit for a subject", async () => {
    await refused(await send(w.url, binary(f, { type: "com.vmware.event.router/event" })), 400, "bad_event_class");
    await refused(await send(w.url, binary(f, { type: "com.vmware.vsphere..v0" })), 400, "bad_event_class");
    await refused(await send(w.url, binary(f, { type: "com.vmware.event.router/event", subject: "Vm>" })), 400, "bad_event_class");
    await refused(await send(w.url, binary(f, { type: "com.vmware.vsphere.Vm Powered*.v0" })), 400, "bad_event_class");
    await refused(await send(w.url, binary(f, { type: "com.example.other" })), 400, "unknown_type");
  });

  it("data that is not a JSON object", async () => {
    await refused(await send(w.url, binary(f, { data: [1, 2] })), 400, "bad_data");
    await refused(await send(w.url, structured({ ...envelopeFor(f), data: "VmPoweredOffEvent" })), 400, "bad_data");
    const { data: _d, ...noData } = envelopeFor(f);
    await refused(await send(w.url, structured(noData)), 400, "bad_data");
    await refused(await send(w.url, { headers: batch([]).headers, body: JSON.stringify(envelopeFor(f)) }), 400, "invalid_cloudevent");
  });

  it("an invalid CloudEvent (validate() refuses it)", async () => {
    const a = await send(w.url, structured({ ...envelopeFor(f), dataschema: "not a uri" }));
    await refused(a, 400, "invalid_cloudevent");
    await refused(await send(w.url, structured({ ...envelopeFor(f), time: "yesterday" })), 400, "invalid_cloudevent");
  });

  it("a body over the limit: 413, by Content-Length and while streaming", async () => {
    const big = { ...f.data, Padding: "x".repeat(70 * 1024) };
    await refused(await send(w.url, binary(f, { data: big })), 413, "too_large");
    // A chunked body that never ends: only a bridge that stops at the limit can answer.
    const req = binary(f);
    const a = await sendEndless(w.url, req.headers, Buffer.alloc(16 * 1024, 0x20), 10_000);
    await refused(a, 413, "too_large");
  });

  it("wrong content type: 415", async () => {
    const req = binary(f);
    await refused(await send(w.url, { headers: { ...req.headers, "content-type": "text/plain" }, body: req.body }), 415, "unsupported_media_type");
    await refused(await send(w.url, { headers: { "content-type": "application/xml" }, body: "<Event/>" }), 415, "unsupported_media_type");
  });

  it("JSON without any CloudEvent attributes", async () => {
    const a = await send(w.url, { headers: { "content-type": "application/json" }, body: JSON.stringify(f.data) });
    await refused(a, 400, "not_cloudevent");
  });

  it("other paths and methods", async () => {
    await refused(await send(w.url, { method: "GET" }), 405, "method_not_allowed");
    await refused(await send(w.url, { path: "/event", ...binary(f) }), 404, "not_found");
  });

  it("counts rejects by reason", async () => {
    await send(w.url, { headers: binary(f).headers, body: "{" });
    const text = await w.metrics.registry.getSingleMetricAsString("iaas_bridge_rejects_total");
    expect(text).toMatch(/iaas_bridge_rejects_total\{(?=[^}]*reason="bad_json")[^}]*\} [1-9]/);
  });
});

describe("service", () => {
  it("answers /healthz and /readyz on its port", async () => {
    expect((await send(w.url, { path: "/healthz", method: "GET" })).status).toBe(200);
    const r = await send(w.url, { path: "/readyz", method: "GET" });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ ready: true, checks: { nats: true } });
  });

  it("is registered as the veba-bridge micro service", async () => {
    const m = await w.nc.request(`$SRV.PING.${ServiceNames.vebaBridge}`, undefined, { timeout: 5_000 });
    expect(m.json<{ name: string }>().name).toBe("veba-bridge");
  });

  it("counts events by class and outcome and times publishes", async () => {
    const f = fixture("VmRemovedEvent.data.json");
    const req = binary(f);
    await send(w.url, req);
    await send(w.url, req);
    const events = await w.metrics.registry.getSingleMetricAsString("iaas_bridge_events_total");
    expect(events).toMatch(/\{(?=[^}]*event_class="VmRemovedEvent")(?=[^}]*outcome="published")[^}]*\} [1-9]/);
    expect(events).toMatch(/\{(?=[^}]*event_class="VmRemovedEvent")(?=[^}]*outcome="duplicate")[^}]*\} [1-9]/);
    const hist = await w.metrics.registry.getSingleMetricAsString("iaas_bridge_publish_duration_seconds");
    expect(hist).toMatch(/iaas_bridge_publish_duration_seconds_count\{[^}]*outcome="ok"[^}]*\} [1-9]/);
  });
});
