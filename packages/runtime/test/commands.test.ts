import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { IaasError, NoticeSchema, PowerCommandSchema, Subjects, Streams, noticeSubject, type PowerCommand, type Result } from "@iaas/contracts";
import { startNatsServer, waitUntil, type NatsServer } from "@iaas/testkit";
import {
  createLogger,
  createMetrics,
  encodeJson,
  ensureConsumer,
  ensureStreams,
  jetstreamFor,
  makeHeaders,
  openBucket,
  startCommandConsumer,
  type CommandConsumer,
  type CommandContext,
  type Jet,
  type KV,
} from "@iaas/runtime";

const log = createLogger("test", "silent");

function powerCmd(id: string, action: PowerCommand["action"] = "off", vm = "web-01"): PowerCommand {
  return { id, area: "power", action, vm, actor: { userId: "U0001", via: "nats" }, issuedAt: new Date().toISOString() };
}

describe("command consumer", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let jet: Jet;
  let state: KV;
  let consumer: CommandConsumer | undefined;
  const calls: { id: string; resumed: boolean; delivery: number }[] = [];
  let behaviour: (cmd: PowerCommand, ctx: CommandContext) => Promise<{ message: string }>;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    jet = await jetstreamFor(nc);
    await ensureStreams(jet.jsm, ["commands", "results", "audit", "deadLetters", "notices"], log);
    state = await openBucket(nc, "commandState");
  });
  afterAll(async () => {
    await consumer?.stop();
    await nc?.close();
    await server?.dispose();
  });
  beforeEach(async () => {
    await consumer?.stop();
    // A fresh consumer per test so leftovers do not leak between tests.
    await jet.jsm.consumers.delete(Streams.commands.name, "power").catch(() => undefined);
    await jet.jsm.streams.purge(Streams.commands.name);
    await ensureConsumer(jet.jsm, "power");
    calls.length = 0;
    behaviour = async (cmd) => ({ message: `did ${cmd.action} ${cmd.vm}` });
    consumer = await startCommandConsumer({
      nc,
      jet,
      state,
      consumer: "power",
      schema: PowerCommandSchema,
      handle: async (cmd, ctx) => {
        calls.push({ id: cmd.id, resumed: ctx.resumed, delivery: ctx.deliveryCount });
        return behaviour(cmd, ctx);
      },
      log,
      metrics: createMetrics("test"),
      // Fast retries so the dead-letter path runs in a test's time.
      backoffMs: () => 50,
    });
  });

  async function results(id: string): Promise<Result[]> {
    const out: Result[] = [];
    const info = await jet.jsm.streams.info(Streams.results.name);
    if (info.state.messages === 0) return out;
    const c = await jet.js.consumers.get(Streams.results.name, { filter_subjects: Subjects.result(id) });
    for (;;) {
      const m = await c.next({ expires: 1000 });
      if (!m) break;
      out.push(m.json<Result>());
    }
    return out;
  }

  async function finalOf(id: string): Promise<Result> {
    return waitUntil(`final result of ${id}`, async () => (await results(id)).find((r) => r.status !== "progress"));
  }

  it("runs a command once and publishes exactly one final result", async () => {
    const cmd = powerCmd("cmd-once-0001");
    await jet.js.publish(Subjects.command("power", "off"), encodeJson(cmd), { msgID: cmd.id });
    const final = await finalOf(cmd.id);
    expect(final).toMatchObject({ status: "succeeded", command: "power.off", message: "did off web-01" });
    expect(calls).toEqual([{ id: cmd.id, resumed: false, delivery: 1 }]);
  });

  it("drops a repeated command id (Nats-Msg-Id) and never runs it twice", async () => {
    const cmd = powerCmd("cmd-twice-0001");
    const a = await jet.js.publish(Subjects.command("power", "off"), encodeJson(cmd), { msgID: cmd.id });
    const b = await jet.js.publish(Subjects.command("power", "off"), encodeJson(cmd), { msgID: cmd.id });
    expect(a.duplicate).toBe(false);
    expect(b.duplicate).toBe(true);
    await finalOf(cmd.id);
    expect(calls.filter((c) => c.id === cmd.id)).toHaveLength(1);
  });

  it("answers a finished command from its stored state when it is delivered again", async () => {
    const cmd = powerCmd("cmd-redeliver-1");
    await jet.js.publish(Subjects.command("power", "off"), encodeJson(cmd), { msgID: cmd.id });
    await finalOf(cmd.id);
    // Same command again with another msg id (as after the dedupe window): state says done.
    await jet.js.publish(Subjects.command("power", "off"), encodeJson(cmd), { msgID: `${cmd.id}-again` });
    await waitUntil("second delivery acked", async () => (await jet.jsm.consumers.info(Streams.commands.name, "power")).num_ack_pending === 0 && (await jet.jsm.consumers.info(Streams.commands.name, "power")).delivered.stream_seq >= 2);
    expect(calls.filter((c) => c.id === cmd.id)).toHaveLength(1);
    expect((await results(cmd.id)).filter((r) => r.status !== "progress")).toHaveLength(1);
  });

  it("retries a retryable failure and hands the retry over as resumed", async () => {
    let n = 0;
    behaviour = async () => {
      n += 1;
      if (n === 1) throw new IaasError("IAAS_VCENTER_UNAVAILABLE", "down for a moment");
      return { message: "ok on the second try" };
    };
    const cmd = powerCmd("cmd-retry-0001");
    await jet.js.publish(Subjects.command("power", "off"), encodeJson(cmd), { msgID: cmd.id });
    const final = await finalOf(cmd.id);
    expect(final).toMatchObject({ status: "succeeded", message: "ok on the second try" });
    expect(calls.map((c) => [c.delivery, c.resumed])).toEqual([
      [1, false],
      [2, true],
    ]);
  });

  it("gives up on a command that keeps failing: dead letter, a final failed result, one audit record", async () => {
    behaviour = async () => {
      throw new IaasError("IAAS_VCENTER_UNAVAILABLE", "vCenter cannot be reached right now.");
    };
    const cmd = powerCmd("cmd-dlq-000001");
    await jet.js.publish(Subjects.command("power", "off"), encodeJson(cmd), { msgID: cmd.id, headers: makeHeaders({ traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" }) });
    const final = await finalOf(cmd.id);
    expect(final).toMatchObject({ status: "failed", error: { code: "IAAS_VCENTER_UNAVAILABLE", retryable: true } });
    expect(calls.map((c) => c.delivery)).toEqual([1, 2, 3, 4, 5]);
    const dlq = await jet.js.consumers.get(Streams.deadLetters.name, { filter_subjects: Subjects.deadLetter("power", "off") });
    const dead = await dlq.next({ expires: 2000 });
    expect(dead?.json()).toMatchObject({ command: { id: cmd.id }, deliveries: 5, error: { code: "IAAS_VCENTER_UNAVAILABLE" } });
    // The trace that came in with the command goes out with its result and dead letter.
    expect(dead?.headers?.get("traceparent")).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
    // A notice for the Slack notify channel, in IAAS_NOTICES (the gateway posts it once).
    const notices = await jet.js.consumers.get(Streams.notices.name, { filter_subjects: noticeSubject("command.dead-letter") });
    const n = await notices.next({ expires: 2000 });
    expect(n?.headers?.get("Nats-Msg-Id")).toBe(`dlq-${cmd.id}`);
    expect(NoticeSchema.parse(n?.json())).toMatchObject({ id: `dlq-${cmd.id}`, kind: "command.dead-letter", severity: "error", cause: cmd.id });
    expect(n?.json<{ text: string }>().text).toContain("after 5 tries: vCenter cannot be reached right now.");
  });

  it("answers a permanent failure once, with its code, and does not retry", async () => {
    behaviour = async () => {
      throw new IaasError("IAAS_VM_NOT_FOUND", "No VM named `nope`.");
    };
    const cmd = powerCmd("cmd-perm-00001", "on", "nope");
    await jet.js.publish(Subjects.command("power", "on"), encodeJson(cmd), { msgID: cmd.id });
    const final = await finalOf(cmd.id);
    expect(final).toMatchObject({ status: "failed", error: { code: "IAAS_VM_NOT_FOUND", message: "No VM named `nope`.", retryable: false } });
    expect(calls).toHaveLength(1);
  });

  it("terminates a poisoned message: answers it once if it names an id, never calls the handler", async () => {
    await jet.js.publish(Subjects.command("power", "off"), new TextEncoder().encode("{not json"), { msgID: "poison-1" });
    const bad = { ...powerCmd("cmd-poison-001"), vm: "web-*" };
    await jet.js.publish(Subjects.command("power", "off"), encodeJson(bad), { msgID: bad.id });
    const final = await finalOf(bad.id);
    expect(final.status).toBe("failed");
    expect(final.status === "failed" && final.error.code).toBe("IAAS_BAD_REQUEST");
    expect(final.status === "failed" && final.error.message).toMatch(/^invalid command: vm: must be an exact VM name/);
    await waitUntil("both acked", async () => (await jet.jsm.consumers.info(Streams.commands.name, "power")).num_ack_pending === 0);
    expect(calls).toHaveLength(0);
  });

  it("refuses a body whose action differs from its subject", async () => {
    const cmd = powerCmd("cmd-mismatch-1", "on");
    await jet.js.publish(Subjects.command("power", "off"), encodeJson(cmd), { msgID: cmd.id });
    const final = await finalOf(cmd.id);
    expect(final.status === "failed" && final.error.message).toBe("the command body (power.on) does not match its subject iaas.cmd.power.off");
    expect(calls).toHaveLength(0);
  });
});

describe("metrics", () => {
  it("reports a consumer's backlog at scrape time", async () => {
    const server = await startNatsServer();
    const nc = await connect({ servers: server.url });
    try {
      const jet = await jetstreamFor(nc);
      await ensureStreams(jet.jsm, ["commands", "results", "audit", "deadLetters"], log);
      await ensureConsumer(jet.jsm, "power");
      for (let i = 0; i < 3; i++) await jet.js.publish(Subjects.command("power", "on"), encodeJson(powerCmd(`cmd-backlog-${i}00`, "on")), { msgID: `b${i}` });
      const metrics = createMetrics("test");
      metrics.watchConsumer("power", async () => {
        const info = await jet.jsm.consumers.info(Streams.commands.name, "power");
        return { pending: info.num_pending, ackPending: info.num_ack_pending, redelivered: info.num_redelivered };
      });
      const text = await metrics.registry.metrics();
      expect(text).toContain('iaas_jetstream_pending_messages{consumer="power",kind="pending",service="test"} 3');
    } finally {
      await nc.close();
      await server.dispose();
    }
  });
});

describe("consumer overrides", () => {
  it("creates a consumer with an operator's ack wait and updates an existing one to match", async () => {
    const server = await startNatsServer();
    const nc = await connect({ servers: server.url });
    try {
      const jet = await jetstreamFor(nc);
      await ensureStreams(jet.jsm, ["commands"], log);
      await ensureConsumer(jet.jsm, "power", { ackWaitMs: 5000 });
      expect((await jet.jsm.consumers.info(Streams.commands.name, "power")).config).toMatchObject({ ack_wait: 5000 * 1e6, max_deliver: 5 });
      await ensureConsumer(jet.jsm, "power", { ackWaitMs: 7000, maxDeliver: 3 });
      expect((await jet.jsm.consumers.info(Streams.commands.name, "power")).config).toMatchObject({ ack_wait: 7000 * 1e6, max_deliver: 3 });
      // Without overrides an existing consumer is left as the operator set it.
      await ensureConsumer(jet.jsm, "power");
      expect((await jet.jsm.consumers.info(Streams.commands.name, "power")).config.ack_wait).toBe(7000 * 1e6);
    } finally {
      await nc.close();
      await server.dispose();
    }
  });
});

describe("under least privilege", () => {
  it("names the missing stream and the bootstrap when a service may not create it", async () => {
    const { mkdtemp, writeFile, rm } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dir = await mkdtemp(join(tmpdir(), "iaas-lp-"));
    const conf = join(dir, "nats.conf");
    // A user who may only look JetStream up, as every service is in deploy/nats.
    await writeFile(conf, `authorization { users: [ { user: svc, password: pw, permissions: { publish: { allow: ["$JS.API.INFO", "$JS.API.STREAM.INFO.>"] }, subscribe: { allow: ["_INBOX.>"] } } } ] }\n`);
    const server = await startNatsServer({ args: ["-c", conf] });
    const nc = await connect({ servers: server.url, user: "svc", pass: "pw" });
    try {
      const jet = await jetstreamFor(nc, 3000);
      await expect(ensureStreams(jet.jsm, ["commands"], log)).rejects.toThrow(
        "JetStream stream IAAS_COMMANDS does not exist and this NATS user may not create it: run the admin bootstrap first (node deploy/nats/bootstrap.mjs, see docs/operations.md)",
      );
    } finally {
      await nc.close();
      await server.dispose();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("command consumer under crashes and NATS trouble", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let jet: Jet;
  let state: KV;
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    jet = await jetstreamFor(nc);
    await ensureStreams(jet.jsm, ["commands", "results", "audit", "deadLetters"], log);
    state = await openBucket(nc, "commandState");
    await ensureConsumer(jet.jsm, "power", { ackWaitMs: 3000 });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.dispose();
  });

  it("waits out the lease of a delivery that started moments ago elsewhere, then runs it as resumed", async () => {
    const calls: { resumed: boolean; delivery: number }[] = [];
    const cmd = powerCmd("cmd-lease-00001");
    // Another instance started this command just now (it may still be running its vCenter task).
    await state.put(cmd.id, JSON.stringify({ status: "started", at: new Date().toISOString(), delivery: 1 }));
    const consumer = await startCommandConsumer({
      nc, jet, state, consumer: "power", schema: PowerCommandSchema, log, metrics: createMetrics("test"),
      handle: async (_c, ctx) => {
        calls.push({ resumed: ctx.resumed, delivery: ctx.deliveryCount });
        return { message: "done" };
      },
    });
    try {
      await jet.js.publish(Subjects.command("power", "off"), encodeJson(cmd), { msgID: cmd.id });
      await waitUntil("the command to run after the lease", () => calls.length === 1, 20_000);
      // Not on the delivery that found the lease held: that one was handed back.
      expect(calls).toEqual([{ resumed: true, delivery: 2 }]);
    } finally {
      await consumer.stop();
    }
  });

  it("survives failing to store a command's state: the message comes back and is answered once", async () => {
    let failNextDone = true;
    // The real bucket, with one write failing as it would while NATS fails over.
    const flaky = new Proxy(state, {
      get(target, prop, receiver) {
        if (prop === "put") {
          return async (key: string, value: string) => {
            if (failNextDone && value.includes('"status":"done"')) {
              failNextDone = false;
              throw new Error("simulated: JetStream unavailable");
            }
            return target.put(key, value);
          };
        }
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    let runs = 0;
    const consumer = await startCommandConsumer({
      nc, jet, state: flaky, consumer: "power", schema: PowerCommandSchema, log, metrics: createMetrics("test"),
      handle: async () => {
        runs += 1;
        return { message: "done once" };
      },
    });
    try {
      const cmd = powerCmd("cmd-flaky-00001");
      await jet.js.publish(Subjects.command("power", "off"), encodeJson(cmd), { msgID: cmd.id });
      const c = await jet.js.consumers.get(Streams.results.name, { filter_subjects: Subjects.result(cmd.id) });
      const first = await waitUntil("a final result", async () => (await c.next({ expires: 1000 }))?.json<Result>(), 30_000);
      expect(first).toMatchObject({ status: "succeeded", message: "done once" });
      // The loop is still alive and takes the next command.
      const next = powerCmd("cmd-flaky-00002");
      await jet.js.publish(Subjects.command("power", "off"), encodeJson(next), { msgID: next.id });
      await waitUntil("the next command", () => runs >= 2 && runs <= 3, 30_000);
    } finally {
      await consumer.stop();
    }
  });
});
