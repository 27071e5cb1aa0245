import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Streams } from "@iaas/contracts";
import { ensureStreams, isNatsConnected } from "@iaas/runtime";
import { waitUntil } from "@iaas/testkit";
import { fixture } from "./fixtures.js";
import { batch, binary, envelopeFor, log, purgeEvents, send, startWorld, storedEvents, type World } from "./helpers.js";

let w: World;

beforeAll(async () => {
  w = await startWorld();
});
afterAll(async () => {
  await w?.close();
});

describe("when JetStream cannot store the event, the answer is 503 so VEBA retries", () => {
  it("NATS down: 503; after NATS is back the retry is stored once", async () => {
    await purgeEvents(w.jet);
    const req = binary(fixture("VmPoweredOffEvent.data.json"));
    await w.server.stop();

    const down = await send(w.url, req);
    expect(down.status).toBe(503);
    expect(down.headers["retry-after"]).toBe("5");
    expect(down.json.error.code).toBe("IAAS_UNAVAILABLE");
    expect(down.json.error.message).toMatch(/^JetStream did not store 1 of 1 events/);
    await waitUntil("readyz to say not ready", async () => (await send(w.url, { path: "/readyz", method: "GET" })).status === 503);

    await w.server.restart();
    await waitUntil("NATS reconnected", () => isNatsConnected(w.nc));
    await waitUntil("the events stream back", async () => (await w.jet.jsm.streams.info(Streams.events.name)).config.name);

    const retry = await send(w.url, req);
    expect(retry.status).toBe(200);
    expect(retry.json).toMatchObject({ accepted: 1, duplicates: 0 });
    expect((await storedEvents(w.jet)).map((s) => s.event.key)).toEqual([2817273]);
    // VEBA may retry once more after a lost answer: still one message.
    expect((await send(w.url, req)).json.duplicates).toBe(1);
    expect(await storedEvents(w.jet)).toHaveLength(1);
    const counted = await w.metrics.registry.getSingleMetricAsString("iaas_bridge_events_total");
    expect(counted).toMatch(/\{(?=[^}]*event_class="VmPoweredOffEvent")(?=[^}]*outcome="failed")[^}]*\} [1-9]/);
  });

  it("no stream for the subject: 503 for a whole batch, stored once the stream is back", async () => {
    await w.jet.jsm.streams.delete(Streams.events.name);
    const req = batch([envelopeFor(fixture("VmRemovedEvent.data.json")), envelopeFor(fixture("TaskEvent.CreateSnapshot_Task.data.json"))]);

    const a = await send(w.url, req);
    expect(a.status).toBe(503);
    expect(a.json.error.message).toMatch(/^JetStream did not store 2 of 2 events/);

    await ensureStreams(w.jet.jsm, ["events"], log);
    const b = await send(w.url, req);
    expect(b.status).toBe(200);
    expect(b.json.accepted).toBe(2);
    expect((await storedEvents(w.jet)).map((s) => s.subject).sort()).toEqual(["vsphere.event.TaskEvent", "vsphere.event.VmRemovedEvent"]);
  });
});
