import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, type JsMsg } from "@nats-io/jetstream";
import { startNatsServer, waitUntil, type NatsServer } from "@iaas/testkit";
import { backoffMs, consumeLoop, createLogger, jetstreamFor, type Jet } from "@iaas/runtime";

const log = createLogger("test", "silent");

describe("consumeLoop", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let jet: Jet;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    jet = await jetstreamFor(nc);
    await jet.jsm.streams.add({ name: "LOOP", subjects: ["loop.>"] });
  });

  afterAll(async () => {
    await nc?.close();
    await server?.dispose();
  });

  const durable = async (name: string, ackWaitMs = 30_000) => {
    await jet.jsm.consumers.add("LOOP", { durable_name: name, ack_policy: AckPolicy.Explicit, filter_subject: `loop.${name}`, ack_wait: ackWaitMs * 1e6 });
    return jet.js.consumers.get("LOOP", name);
  };

  it("with a limit of 1, handles messages one by one in stream order; stop waits for the one in hand", async () => {
    const consumer = await durable("serial");
    const seen: number[] = [];
    let busy = 0;
    let most = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const loop = consumeLoop(consumer, {
      limit: 1,
      what: "test",
      log,
      handle: async (m: JsMsg) => {
        busy += 1;
        most = Math.max(most, busy);
        if (m.seq === 1) await gate;
        seen.push(Number(m.string()));
        busy -= 1;
        m.ack();
      },
    });
    for (let i = 0; i < 4; i++) await jet.js.publish("loop.serial", String(i));
    release();
    await waitUntil("four handled", () => seen.length === 4, 10_000);
    expect([seen, most]).toEqual([[0, 1, 2, 3], 1]);

    let finished = false;
    let started!: () => void;
    const inHand = new Promise<void>((r) => (started = r));
    const slow = consumeLoop(consumer, {
      limit: 1,
      what: "test",
      log,
      handle: async (m) => {
        started();
        await new Promise((r) => setTimeout(r, 300));
        finished = true;
        m.ack();
      },
    });
    await loop.stop();
    await jet.js.publish("loop.serial", "slow");
    await inHand;
    await slow.stop();
    expect(finished).toBe(true);
  });

  it("a handler that throws leaves the message to come back; the loop goes on", async () => {
    const consumer = await durable("throws", 1000);
    const seen: string[] = [];
    const loop = consumeLoop(consumer, {
      limit: 2,
      what: "test",
      log,
      handle: async (m) => {
        seen.push(m.string());
        if (m.string() === "bad" && m.info.deliveryCount === 1) throw new Error("boom");
        m.ack();
      },
    });
    await jet.js.publish("loop.throws", "bad");
    await jet.js.publish("loop.throws", "good");
    // Not acked: after its (one-second) ack wait it is delivered again and handled.
    await waitUntil("bad handled twice", () => seen.filter((s) => s === "bad").length === 2, 20_000);
    expect(seen).toContain("good");
    await loop.stop();
  });

  it("backs off 1 s doubling, capped at 30 s", () => {
    expect([1, 2, 3, 5, 6, 20].map(backoffMs)).toEqual([1000, 2000, 4000, 16_000, 30_000, 30_000]);
  });
});
