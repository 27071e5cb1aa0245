import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Streams, eventSubject, normalizeVsphereEvent, type VsphereEvent } from "@iaas/contracts";
import type { MsgRequest } from "@nats-io/jetstream";
import { createLogger, ensureStreams, jetstreamFor, type Jet } from "@iaas/runtime";
import { startNatsServer, type NatsServer } from "@iaas/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { createLookahead, type LaterStatus } from "../src/lookahead.js";

const ALARM = "AlarmStatusChangedEvent";
const SUBJECT = eventSubject(ALARM);

/** What the lookahead must answer: every later alarm message read one by one (the per-message reads it replaces). */
async function reference(jet: Jet, afterSeq: number, ev: VsphereEvent): Promise<LaterStatus | undefined> {
  const n = normalizeVsphereEvent(ev);
  const same = (a?: { value?: string; name?: string }, b?: { value?: string; name?: string }) =>
    !!a && !!b && (a.value && b.value ? a.value === b.value : a.name !== undefined && a.name.toLowerCase() === b.name?.toLowerCase());
  let newest: LaterStatus | undefined;
  for (let seq = afterSeq + 1; ; ) {
    const m = await jet.jsm.streams.getMessage(Streams.events.name, { seq, next_by_subj: SUBJECT } as unknown as MsgRequest);
    if (!m) return newest;
    seq = m.seq + 1;
    let other: VsphereEvent;
    try {
      other = m.json<VsphereEvent>();
    } catch {
      continue;
    }
    if (other.source !== ev.source || other.key <= ev.key) continue;
    const o = normalizeVsphereEvent(other);
    if (!o.to || !same(o.alarm, n.alarm) || !same(o.entity, n.entity)) continue;
    if (!newest || o.key > newest.key) newest = { to: o.to, key: o.key };
  }
}

type Spec = { source?: string; key: number; vm: { name: string; value?: string }; alarm?: string; to: string };

function alarmEvent(s: Spec): VsphereEvent {
  const alarm = s.alarm ?? "VM CPU Usage";
  return {
    id: `ev-${s.key}-${Math.random().toString(36).slice(2)}`,
    source: s.source ?? "https://vc-a/sdk",
    eventClass: ALARM,
    key: s.key,
    time: new Date().toISOString(),
    receivedAt: new Date().toISOString(),
    via: "veba",
    data: {
      Key: s.key,
      Alarm: { Name: alarm, Alarm: { Type: "Alarm", Value: `alarm-${alarm.length}` } },
      Entity: { Name: s.vm.name, Entity: s.vm.value ? { Type: "VirtualMachine", Value: s.vm.value } : { Type: "VirtualMachine" } },
      From: "green",
      To: s.to,
    },
  };
}

describe("the lookahead: one shared scan gives the answers of reading every later alarm one by one", () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let jet: Jet;
  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    jet = await jetstreamFor(nc);
    await ensureStreams(jet.jsm, ["events"], createLogger("test", "silent"));
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.dispose();
  });

  /** Publishes the events (and a power-off after each, another subject); their stream sequences. */
  async function publish(evs: VsphereEvent[]): Promise<number[]> {
    const seqs: number[] = [];
    for (const ev of evs) {
      seqs.push((await jet.js.publish(SUBJECT, JSON.stringify(ev))).seq);
      await jet.js.publish(eventSubject("VmPoweredOffEvent"), JSON.stringify({ ...ev, eventClass: "VmPoweredOffEvent", id: `${ev.id}-off` }));
    }
    return seqs;
  }

  it("matches the per-message reads on a mixed stream: names and morefs, two vCenters, keys out of order, clears, reds again", async () => {
    const vms = [{ name: "web-1", value: "vm-1" }, { name: "WEB-1" }, { name: "web-2", value: "vm-2" }, { name: "db-1", value: "vm-3" }, { name: "db-1", value: "vm-9" }];
    const statuses = ["red", "red", "green", "yellow", "red"];
    let rnd = 7;
    const pick = <T>(xs: T[]) => xs[(rnd = (rnd * 48271) % 2147483647) % xs.length]!;
    const specs: Spec[] = [];
    for (let i = 0; i < 300; i++) {
      // Keys mostly rising, some lower than earlier ones, some repeated.
      const key = 10_000 + i * 3 + pick([0, 0, 0, -40, -7, 1]);
      specs.push({ key, vm: pick(vms), to: pick(statuses), alarm: pick(["VM CPU Usage", "VM Memory Usage"]), source: pick(["https://vc-a/sdk", "https://vc-a/sdk", "https://vc-b/sdk"]) });
    }
    const evs = specs.map(alarmEvent);
    await jet.js.publish(SUBJECT, "not json");
    const seqs = await publish(evs);
    const want = await Promise.all(evs.map((ev, i) => reference(jet, seqs[i]!, ev)));
    expect(want.filter(Boolean).length, "the stream has answers to find").toBeGreaterThan(100);
    expect(new Set(want.map((w) => w?.to)).size).toBeGreaterThan(2);

    // In stream order (as the consumer asks), then again out of order (redeliveries) on the same lookahead.
    const la = createLookahead(jet, { maxEntries: 10_000 });
    const inOrder: (LaterStatus | undefined)[] = [];
    for (let i = 0; i < evs.length; i++) inOrder.push(await la.newerAlarmStatus(seqs[i]!, evs[i]!, normalizeVsphereEvent(evs[i]!)));
    expect(inOrder).toEqual(want);
    expect(la.stats().fallbackReads).toBe(0);
    for (const i of [250, 3, 120, 0, 299]) expect(await la.newerAlarmStatus(seqs[i]!, evs[i]!, normalizeVsphereEvent(evs[i]!)), `redelivered ${i}`).toEqual(want[i]);

    // A small cap: what is dropped is read one by one, with the same answers.
    const small = createLookahead(jet, { maxEntries: 5 });
    const capped: (LaterStatus | undefined)[] = [];
    for (let i = 0; i < 60; i++) capped.push(await small.newerAlarmStatus(seqs[i]!, evs[i]!, normalizeVsphereEvent(evs[i]!)));
    expect(capped).toEqual(want.slice(0, 60));
    expect(small.stats().fallbackReads).toBeGreaterThan(0);
    // The reference answers read every later message per event: quadratic, slow on a loaded machine.
  }, 180_000);

  it("reads each message once for a queued storm, holds at most its cap, and lookups at once share one scan", async () => {
    const base = 1_000_000;
    const evs = Array.from({ length: 300 }, (_, i) => alarmEvent({ key: base + i, vm: { name: `vm-${i % 150}`, value: `vm-${i % 150}` }, alarm: i < 150 ? "VM CPU Usage" : "VM Memory Usage", to: "red" }));
    // The last one of vm-7's CPU alarm turns green: the red one before must see it.
    evs.push(alarmEvent({ key: base + 5000, vm: { name: "vm-7", value: "vm-7" }, alarm: "VM CPU Usage", to: "green" }));
    const seqs = await publish(evs);
    const la = createLookahead(jet, { maxEntries: 200 });
    const n0 = normalizeVsphereEvent(evs[0]!);
    // Ten lookups at once: one scan of the messages after it, not ten.
    await Promise.all(Array.from({ length: 10 }, () => la.newerAlarmStatus(seqs[0]!, evs[0]!, n0)));
    const first = la.stats();
    expect(first.scanned).toBe(300); // the 300 stored after the first
    expect(first.entries).toBeLessThanOrEqual(200);
    let maxHeld = 0;
    let maxQueued = 0;
    const got: (LaterStatus | undefined)[] = [];
    for (let i = 0; i < evs.length; i++) {
      got.push(await la.newerAlarmStatus(seqs[i]!, evs[i]!, normalizeVsphereEvent(evs[i]!)));
      maxHeld = Math.max(maxHeld, la.stats().entries);
      maxQueued = Math.max(maxQueued, la.stats().queued);
    }
    expect(maxHeld).toBeLessThanOrEqual(200);
    expect(maxQueued).toBeLessThanOrEqual(2 * 200 + 1024);
    expect(got[7]).toEqual({ to: "green", key: base + 5000 });
    expect(got.filter(Boolean)).toHaveLength(1);
    // Past the consumer's position nothing is kept.
    expect(la.stats().entries).toBeLessThanOrEqual(1);
    expect(la.stats().scanned).toBe(300);
  }, 180_000);

  it("a lookup reads as far as the stream reached at its event's delivery, not on while a storm is still being stored", async () => {
    const base = 7_000_000;
    const first = alarmEvent({ key: base, vm: { name: "vm-upto", value: "vm-upto" }, to: "red" });
    const cleared = alarmEvent({ key: base + 1, vm: { name: "vm-upto", value: "vm-upto" }, to: "green" });
    const [seq] = await publish([first]);
    const [greenSeq] = await publish([cleared]);
    const la = createLookahead(jet, { maxEntries: 50_000 });
    // A storm stored meanwhile, 20 at a time, until the lookup answers: reading on to the end would never answer.
    let answered = false;
    let stormKey = base + 10;
    const storm = (async () => {
      while (!answered) {
        await Promise.all(Array.from({ length: 20 }, () => jet.js.publish(SUBJECT, JSON.stringify(alarmEvent({ key: stormKey++, vm: { name: `storm-${stormKey % 500}`, value: `storm-${stormKey % 500}` }, to: "red" })))));
      }
    })();
    const got = await la.newerAlarmStatus(seq!, first, normalizeVsphereEvent(first), greenSeq! + 1);
    answered = true;
    await storm;
    // What was stored before the delivery is seen: the alarm turned green again.
    expect(got).toEqual({ to: "green", key: base + 1 });
  }, 120_000);

  it("a VM flapping thousands of times is held as one event", async () => {
    const evs = Array.from({ length: 2000 }, (_, i) => alarmEvent({ key: 5_000_000 + i, vm: { name: "flappy", value: "vm-flap" }, to: i % 2 ? "green" : "red" }));
    const seqs: number[] = [];
    for (const ev of evs) seqs.push((await jet.js.publish(SUBJECT, JSON.stringify(ev))).seq);
    const la = createLookahead(jet, { maxEntries: 100 });
    const got = await la.newerAlarmStatus(seqs[0]!, evs[0]!, normalizeVsphereEvent(evs[0]!));
    expect(got).toEqual({ to: "green", key: 5_000_000 + 1999 });
    expect(la.stats()).toMatchObject({ entries: 1, groups: 1, fallbackReads: 0 });
  });
});
