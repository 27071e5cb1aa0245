/**
 * The NATS users of deploy/nats/nats-server.conf, proven against a real nats-server started with
 * that very file: what each service needs works, and what it must not do is refused by the server
 * (a permission violation, not a timeout or a silent drop).
 *
 * The expectations below are written from the product rules (the NATS contract and the
 * permission rules in contracts/src/permissions.ts), not computed from the permission lists, so
 * a wrong list fails here. A power command runs end to end under the real users: the gateway
 * publishes it, the real runtime command consumer runs it as `power`, a vcenter-proxy stand-in
 * answers as `vcenter-proxy`, and the gateway reads the result from its durable consumer.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, errors, type NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, jetstream, jetstreamManager, type Consumer, type JsMsg } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import * as contracts from "@iaas/contracts";
import {
  Buckets,
  PAUSE_KEY,
  Consumers,
  NatsPermissions,
  ProxyEndpoints,
  ResultSchema,
  ServiceNames,
  Streams,
  Subjects,
  natsPasswordEnv,
  noticeSubject,
  type NatsUserName,
  type PowerCommand,
  type VmSummary,
} from "@iaas/contracts";
import * as runtime from "@iaas/runtime";
import { startNatsServer, type NatsServer } from "@iaas/testkit";
import { bootstrap } from "../../deploy/nats/bootstrap.mjs";
import { TEST_OBSERVER, renderServerConf } from "../../deploy/nats/render.js";

const CONF = fileURLToPath(new URL("../../deploy/nats/nats-server.conf", import.meta.url));
const USERS: NatsUserName[] = ["admin", ...Object.values(ServiceNames)];
const log = runtime.createLogger("nats-permissions-test", "silent");
const enc = new TextEncoder();

type Violation = InstanceType<typeof errors.PermissionViolationError>;

interface Client {
  user: NatsUserName;
  nc: NatsConnection;
  /** Permission violations the server reported on this connection (async `-ERR`s). */
  violations: Violation[];
}

let server: NatsServer;
/**
 * The services' account (IAAS_APPS) holds their core subjects (notices, vcenter-proxy, inboxes);
 * the admin is in the JetStream account and sees none of them. This user, added to the generated
 * config only here, watches and publishes them, as the admin does JetStream's.
 */
let observer: NatsConnection;
const passwords = new Map<NatsUserName, string>();
const clients = new Map<NatsUserName, Client>();
const c = (u: NatsUserName): Client => clients.get(u)!;

async function open(user: NatsUserName): Promise<Client> {
  const nc = await connect({ servers: server.url, user, pass: passwords.get(user)!, name: `test-${user}`, reconnect: false, ...(user === "admin" ? {} : { inboxPrefix: contracts.inboxPrefixFor(user) }) });
  const client: Client = { user, nc, violations: [] };
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "error" && s.error instanceof errors.PermissionViolationError) client.violations.push(s.error);
    }
  })();
  return client;
}

/** The violations reported from now on, for a test that must cause none. */
function since(u: NatsUserName): () => Violation[] {
  const n = c(u).violations.length;
  return () => c(u).violations.slice(n);
}

function isViolation(err: unknown, operation: "publish" | "subscription", subject?: string): boolean {
  const e = err as Violation;
  return e instanceof errors.PermissionViolationError && e.operation === operation && (subject === undefined || e.subject === subject);
}

async function waitFor<T>(what: string, fn: () => T | undefined, ms = 3000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A core publish the server must refuse: the violation arrives, and a watcher sees nothing. */
async function publishDenied(cl: Client, subject: string): Promise<void> {
  const watch = c("admin").nc.subscribe(subject);
  const watchApps = observer.subscribe(subject);
  await c("admin").nc.flush();
  await observer.flush();
  const before = cl.violations.length;
  cl.nc.publish(subject, enc.encode("{}"));
  await cl.nc.flush();
  await waitFor(`publish violation on ${subject} for ${cl.user}`, () => cl.violations.slice(before).find((v) => isViolation(v, "publish", subject)));
  await c("admin").nc.flush();
  await observer.flush();
  expect(watch.getReceived() + watchApps.getReceived(), `${cl.user} must not reach ${subject}`).toBe(0);
  watch.unsubscribe();
  watchApps.unsubscribe();
}

async function publishAllowed(cl: Client, subject: string): Promise<void> {
  // The services' core subjects stay in their account.
  const watch = observer.subscribe(subject, { max: 1 });
  await observer.flush();
  const before = cl.violations.length;
  cl.nc.publish(subject, enc.encode("{}"));
  await cl.nc.flush();
  await waitFor(`${subject} from ${cl.user} to arrive`, () => watch.getReceived() === 1);
  expect(cl.violations.slice(before)).toEqual([]);
}

async function subscribeDenied(cl: Client, subject: string, queue?: string): Promise<void> {
  const sub = cl.nc.subscribe(subject, queue ? { queue } : {});
  const closed = await Promise.race([sub.closed, sleep(3000).then(() => "still open" as const)]);
  expect(isViolation(closed, "subscription", subject), `${cl.user} subscribing ${subject}: ${String(closed)}`).toBe(true);
}

async function subscribeAllowed(cl: Client, subject: string, sample: string): Promise<void> {
  const sub = cl.nc.subscribe(subject, { max: 1 });
  await cl.nc.flush();
  observer.publish(sample, enc.encode("{}"));
  await waitFor(`${sample} to reach ${cl.user}`, () => sub.getReceived() === 1);
}

/** A request (JetStream API, publish with ack, micro endpoint) the server refuses: it fails at once. */
async function requestDenied(promise: Promise<unknown>, subject?: string): Promise<void> {
  const err = await promise.then(
    () => new Error("allowed"),
    (e: unknown) => e,
  );
  const cause = (err as { cause?: unknown }).cause;
  expect(isViolation(err, "publish", subject) || isViolation(cause, "publish", subject), `expected a publish violation${subject ? ` on ${subject}` : ""}, got ${String(err)}`).toBe(true);
}

/** The next message a durable delivers on `subject` (and matching `pred`); earlier ones are acked and passed over. */
async function nextOn(cons: Consumer, subject: string, pred: (m: JsMsg) => boolean = () => true): Promise<JsMsg> {
  for (let i = 0; i < 50; i++) {
    const m = await cons.next({ expires: 3000 });
    if (!m) break;
    if (m.subject === subject && pred(m)) return m;
    m.ack();
  }
  throw new Error(`no message on ${subject}`);
}

async function jsPublish(cl: Client, subject: string, data: unknown = {}): Promise<{ stream: string }> {
  return jetstream(cl.nc, { timeout: 3000 }).publish(subject, enc.encode(JSON.stringify(data)), { msgID: randomBytes(8).toString("hex") });
}

const vm = (name: string, powerState: VmSummary["powerState"] = "poweredOn"): VmSummary => ({ name, moref: "vm-42", powerState, numCpu: 1, memoryMB: 2048, template: false });

function powerCommand(action: PowerCommand["action"]): PowerCommand {
  return { id: `cmd-${randomBytes(6).toString("hex")}`, actor: { userId: "U0001", via: "nats" }, issuedAt: new Date().toISOString(), area: "power", action, vm: "DC0_H0_VM0" };
}

/**
 * nats-server parses an environment variable's value as config syntax: `1e5` is a number, `true`
 * a boolean, `4k` 4096, `a b` an error and `x#y` is `x` (a comment). So passwords are letters and
 * digits starting with a letter (docs/operations.md), or a bcrypt hash.
 */
function password(): string {
  return `p${randomBytes(16).toString("hex")}`;
}

beforeAll(async () => {
  for (const u of USERS) {
    passwords.set(u, password());
    process.env[natsPasswordEnv(u)] = passwords.get(u);
  }
  // -m -1: the config's monitoring port 8222 may be taken on a shared machine.
  const observerPassword = password();
  process.env[TEST_OBSERVER.env] = observerPassword;
  const conf = join(await mkdtemp(join(tmpdir(), "iaas-nats-conf-")), "nats-server.conf");
  await writeFile(conf, renderServerConf({ observer: true }));
  server = await startNatsServer({ args: ["-c", conf, "-m", "-1"] });
  for (const u of USERS) clients.set(u, await open(u));
  observer = await connect({ servers: server.url, user: TEST_OBSERVER.user, pass: observerPassword, reconnect: false });
  await bootstrap({ nc: c("admin").nc, runtime, contracts, log });
});

afterAll(async () => {
  for (const cl of clients.values()) await cl.nc.close().catch(() => undefined);
  await observer?.close().catch(() => undefined);
  await server?.dispose();
});

describe("the generated config", () => {
  it("is what deploy/nats/gen.ts writes (run `pnpm gen:nats` when this fails)", async () => {
    expect(await readFile(CONF, "utf8")).toBe(renderServerConf());
  });

  it("answers through grants on the askers' inboxes, never allow_responses (it passes even a deny list)", async () => {
    expect(await readFile(CONF, "utf8")).not.toMatch(/allow_responses/);
    const inboxes = (u: NatsUserName) => contracts.natsUser(u).publish.filter((g) => g.subject.startsWith("_INBOX")).map((g) => g.subject);
    // The proxy answers the admin and every service that calls it, and publishes nothing else.
    expect(contracts.natsUser("vcenter-proxy").publish.map((g) => g.subject).sort()).toEqual(["_INBOX_gateway.>", "_INBOX_lease-keeper.>", "_INBOX_power.>", "_INBOX_remediation.>", "_INBOX_veba-bridge.>", "_INBOX_vm-lifecycle.>", "_R_.>"]);
    // Only the admin asks the others anything (`$SRV` discovery), from the JetStream account
    // through an import: the server gives those requests `_R_.…` reply subjects.
    for (const u of Object.values(ServiceNames).filter((n) => n !== "vcenter-proxy")) expect(inboxes(u), u).toEqual([]);
    for (const u of Object.values(ServiceNames)) expect(contracts.mayPublish(u, "_R_.x.y"), u).toBe(true);
  });

  it("reply grants follow from overlapping subjects (`*` one token, `>` one or more)", () => {
    const overlap: [string, string][] = [["vcenter.>", "vcenter.vm.get"], ["$SRV.*", ">"], ["a.*.c", "a.>"], ["a.b", "a.b"], ["$SRV.PING.power.*", "$SRV.PING.*.x"]];
    const apart: [string, string][] = [["vcenter.>", "vcenter"], ["a.*", "a.b.c"], ["a.b", "a.c"], ["$SRV.PING", "$SRV.PING.power"], ["$SRV.PING.*", "$SRV.PING.power.x"]];
    for (const [a, b] of overlap) expect([contracts.subjectsOverlap(a, b), contracts.subjectsOverlap(b, a)], `${a} ~ ${b}`).toEqual([true, true]);
    for (const [a, b] of apart) expect([contracts.subjectsOverlap(a, b), contracts.subjectsOverlap(b, a)], `${a} ~ ${b}`).toEqual([false, false]);
  });

  it("responders tell an inbox from any other reply subject", () => {
    for (const ok of ["_INBOX.abc", "_INBOX.abc.1", "_INBOX_gateway.N.t", "_INBOX_gateway-test.x"]) expect(contracts.isReplyInbox(ok), ok).toBe(true);
    for (const bad of [undefined, "", "_INBOX", "_INBOX.", "_INBOX_.x", "_INBOXES.x", "$JS.API.STREAM.PURGE.IAAS_AUDIT", "iaas.cmd.vm.delete", "$KV.iaas_requests.k", "$SRV.PING", "x._INBOX.y"]) {
      expect(contracts.isReplyInbox(bad), String(bad)).toBe(false);
    }
  });

  it("declares every service and admin, each with its own password variable", () => {
    expect(NatsPermissions.map((p) => p.user).sort()).toEqual([...USERS].sort());
    expect(new Set(USERS.map(natsPasswordEnv)).size).toBe(USERS.length);
  });

  it("refuses to start when a password variable is missing or does not parse as a string", async () => {
    const saved = process.env[natsPasswordEnv("power")];
    try {
      process.env[natsPasswordEnv("power")] = "1e5"; // a number to the config parser
      await expect(startNatsServer({ args: ["-c", CONF, "-m", "-1"] })).rejects.toThrow(/NATS_PASSWORD_POWER/);
      delete process.env[natsPasswordEnv("power")];
      await expect(startNatsServer({ args: ["-c", CONF, "-m", "-1"] })).rejects.toThrow(/NATS_PASSWORD_POWER/);
    } finally {
      process.env[natsPasswordEnv("power")] = saved;
    }
  });

  it("refuses a wrong password and a connection without credentials", async () => {
    const wrong = await connect({ servers: server.url, user: "power", pass: "not-the-password", reconnect: false }).then(
      () => "connected",
      (e: Error) => e.name,
    );
    expect(wrong).toBe("AuthorizationError");
    const anon = await connect({ servers: server.url, reconnect: false }).then(
      () => "connected",
      (e: Error) => e.name,
    );
    expect(anon).toBe("AuthorizationError");
  });
});

describe("services only look JetStream up; the admin bootstrap made it", () => {
  it("admin created every stream, consumer and bucket from contracts", async () => {
    const jsm = await jetstreamManager(c("admin").nc);
    for (const s of Object.values(Streams)) expect((await jsm.streams.info(s.name)).config.name).toBe(s.name);
    for (const k of Object.values(Consumers)) expect((await jsm.consumers.info(k.stream, k.durable)).name).toBe(k.durable);
    for (const b of Object.values(Buckets)) expect((await jsm.streams.info(`KV_${b.name}`)).config.name).toBe(`KV_${b.name}`);
  });

  it("each service's start-up (ensureStreams, ensureConsumer, openBucket) passes on what exists", async () => {
    const fresh = new Map(USERS.map((u) => [u, since(u)]));
    const jet = (u: NatsUserName) => runtime.jetstreamFor(c(u).nc, 3000);
    const gw = await jet("gateway");
    await runtime.ensureStreams(gw.jsm, ["commands", "results", "audit", "deadLetters"], log);
    await runtime.ensureConsumer(gw.jsm, "gatewayResults");
    for (const b of ["requests", "confirmations", "rateLimits", "notices", "approvals"] as const) await runtime.openBucket(c("gateway").nc, b);
    for (const u of ["power", "vm-lifecycle"] as const) {
      const j = await jet(u);
      await runtime.ensureStreams(j.jsm, ["commands", "results", "audit", "deadLetters"], log);
      await runtime.ensureConsumer(j.jsm, u === "power" ? "power" : "vmLifecycle");
      await runtime.openBucket(c(u).nc, "commandState");
    }
    await runtime.ensureStreams((await jet("veba-bridge")).jsm, ["events"], log);
    await runtime.ensureStreams((await jet("remediation")).jsm, ["events", "audit"], log);
    for (const u of USERS) expect(fresh.get(u)!(), u).toEqual([]);
  });

  it("no service may create, change, purge or delete a stream or a consumer", async () => {
    for (const u of Object.values(ServiceNames)) {
      const jsm = await jetstreamManager(c(u).nc, { checkAPI: false, timeout: 3000 });
      await requestDenied(jsm.streams.add({ name: `ROGUE_${u.replace(/-/g, "_")}`, subjects: [`rogue.${u}`] }));
      await requestDenied(jsm.streams.delete(Streams.commands.name));
      await requestDenied(jsm.streams.purge(Streams.audit.name));
      await requestDenied(jsm.consumers.add(Streams.commands.name, { durable_name: `rogue-${u}`, ack_policy: AckPolicy.Explicit }));
      await requestDenied(jsm.consumers.delete(Consumers.power.stream, Consumers.power.durable));
    }
  });
});

describe("replies: each service reads only its own inbox", () => {
  it.each(["gateway", "power", "vm-lifecycle", "remediation", "vcenter-proxy", "veba-bridge"] as const)("%s may not subscribe the shared or another service's inbox", async (u) => {
    await subscribeDenied(c(u), "_INBOX.>");
    const other = u === "gateway" ? "power" : "gateway";
    await subscribeDenied(c(u), `${contracts.inboxPrefixFor(other)}.>`);
    await subscribeAllowed(c(u), `${contracts.inboxPrefixFor(u)}.>`, `${contracts.inboxPrefixFor(u)}.probe`);
  });
});

describe("commands: only the gateway and admin publish them", () => {
  it("the gateway and admin publish commands into IAAS_COMMANDS (pub ack)", async () => {
    expect((await jsPublish(c("gateway"), Subjects.command("power", "on"), powerCommand("on"))).stream).toBe(Streams.commands.name);
    expect((await jsPublish(c("admin"), Subjects.command("power", "on"), powerCommand("on"))).stream).toBe(Streams.commands.name);
  });

  it.each(Object.values(ServiceNames).filter((u) => u !== "gateway"))("%s may not publish a command", async (u) => {
    await requestDenied(jsPublish(c(u), Subjects.command("power", "off"), powerCommand("off")), Subjects.command("power", "off"));
    await publishDenied(c(u), Subjects.command("vm", "delete"));
  });

  it.each(Object.values(ServiceNames))("%s may not read commands outside JetStream", async (u) => {
    await subscribeDenied(c(u), Subjects.commandsAll);
  });
});

describe("a power command end to end under the real users", () => {
  it("gateway -> power (runtime consumer) -> vcenter-proxy -> result back to the gateway, with no violation", async () => {
    const marks = new Map(USERS.map((u) => [u, c(u).violations.length]));
    const proxy = await runtime.addMicroService(c("vcenter-proxy").nc, ServiceNames.vcenterProxy, "0.0.0", "test stand-in");
    runtime.addJsonEndpoint(proxy, ProxyEndpoints.vmGet, async (req) => ({ vm: vm(req.vm) }), log);
    runtime.addJsonEndpoint(proxy, ProxyEndpoints.vmPower, async (req) => ({ vm: vm(req.vm, req.action === "on" ? "poweredOn" : "poweredOff") }), log);
    const powerMicro = await runtime.addMicroService(c("power").nc, ServiceNames.power, "0.0.0", "test");
    const jet = await runtime.jetstreamFor(c("power").nc, 3000);
    const state = await runtime.openBucket(c("power").nc, "commandState");
    const consumer = await runtime.startCommandConsumer({
      nc: c("power").nc,
      jet,
      state,
      consumer: "power",
      schema: contracts.PowerCommandSchema,
      handle: async (cmd) => {
        const r = await runtime.requestJson(c("power").nc, ProxyEndpoints.vmPower, { vm: cmd.vm, action: cmd.action }, { timeoutMs: 3000, requestId: cmd.id });
        return { message: `${r.vm.name} ${r.vm.powerState}`, vm: r.vm };
      },
      log,
      metrics: runtime.createMetrics(`test_power_${randomBytes(3).toString("hex")}`),
    });
    try {
      const cmd = powerCommand("off");
      await jsPublish(c("gateway"), Subjects.command("power", "off"), cmd);

      const results = await jetstream(c("gateway").nc).consumers.get(Consumers.gatewayResults.stream, Consumers.gatewayResults.durable);
      let final: contracts.Result | undefined;
      const deadline = Date.now() + 15_000;
      while (!final && Date.now() < deadline) {
        const m = await results.next({ expires: 2000 });
        if (!m) continue;
        const r = ResultSchema.parse(JSON.parse(m.string()));
        m.ack();
        if (r.id === cmd.id && r.status !== "progress") final = r;
      }
      expect(final).toMatchObject({ id: cmd.id, status: "succeeded", vm: { name: "DC0_H0_VM0", powerState: "poweredOff" } });

      // The command state and the audit record were written as `power`.
      const kv = await new Kvm(c("admin").nc).open(Buckets.commandState.name);
      expect((await kv.get(cmd.id))?.json<{ status: string }>().status).toBe("done");
      const jsm = await jetstreamManager(c("admin").nc);
      const audit = await jsm.streams.getMessage(Streams.audit.name, { last_by_subj: Subjects.audit("command") });
      expect(audit?.json<{ id: string }>().id).toBe(cmd.id);

      // Acks went through: nothing pending or waiting for redelivery on power's durable.
      let info = await jsm.consumers.info(Consumers.power.stream, Consumers.power.durable);
      for (let i = 0; i < 100 && info.num_ack_pending > 0; i++) {
        await sleep(50);
        info = await jsm.consumers.info(Consumers.power.stream, Consumers.power.durable);
      }
      expect(info.num_ack_pending).toBe(0);
      expect(info.num_redelivered).toBe(0);

      // `nats micro ls`: the admin sees both services answer for their own names.
      const pings = await c("admin").nc.requestMany("$SRV.PING", enc.encode(""), { maxWait: 1000 });
      const names: string[] = [];
      for await (const m of pings) names.push((m.json() as { name: string }).name);
      expect(names).toEqual(expect.arrayContaining([ServiceNames.power, ServiceNames.vcenterProxy]));

      for (const u of ["gateway", "power", "vcenter-proxy"] as const) expect(c(u).violations.slice(marks.get(u)), u).toEqual([]);
    } finally {
      await consumer.stop();
      await powerMicro.stop();
      await proxy.stop();
    }
  });
});

describe("power", () => {
  it("consumes only its own durable", async () => {
    const js = jetstream(c("power").nc, { timeout: 3000 });
    await requestDenied(js.consumers.get(Consumers.vmLifecycle.stream, Consumers.vmLifecycle.durable));
    await requestDenied(js.consumers.get(Consumers.gatewayResults.stream, Consumers.gatewayResults.durable));
  });

  it("publishes results, audit, its own dead letters and dead-letter notices, not another area's or remediation's", async () => {
    await publishAllowed(c("power"), noticeSubject("command.dead-letter"));
    await publishDenied(c("power"), noticeSubject("remediation.action"));
    expect((await jsPublish(c("power"), Subjects.result("cmd-power-probe"), {})).stream).toBe(Streams.results.name);
    expect((await jsPublish(c("power"), Subjects.deadLetter("power", "reset"), {})).stream).toBe(Streams.deadLetters.name);
    await requestDenied(jsPublish(c("power"), Subjects.deadLetter("vm", "delete")), Subjects.deadLetter("vm", "delete"));
    await requestDenied(jsPublish(c("power"), Subjects.event("VmPoweredOffEvent")), Subjects.event("VmPoweredOffEvent"));
  });

  it("calls only the vcenter-proxy endpoints it uses", async () => {
    for (const ep of [ProxyEndpoints.vmDestroy, ProxyEndpoints.vmCreate, ProxyEndpoints.vmReconfigure]) {
      await requestDenied(c("power").nc.request(ep.subject, enc.encode("{}"), { timeout: 2000 }), ep.subject);
    }
  });

  it("cannot touch the gateway's bucket", async () => {
    const kv = await new Kvm(jetstream(c("power").nc, { timeout: 3000 })).open(Buckets.requests.name);
    await requestDenied(kv.get("cmd-gateway-probe"));
    await requestDenied(kv.put("cmd-gateway-probe", "{}"));
    await publishDenied(c("power"), `$KV.${Buckets.requests.name}.probe`);
  });
});

describe("vm-lifecycle", () => {
  it("pulls and acks vm commands from its durable and publishes their results", async () => {
    const fresh = since("vm-lifecycle");
    const create = { id: `cmd-${randomBytes(6).toString("hex")}`, area: "vm", action: "create" };
    await jsPublish(c("admin"), Subjects.command("vm", "create"), create);
    const cons = await jetstream(c("vm-lifecycle").nc, { timeout: 3000 }).consumers.get(Consumers.vmLifecycle.stream, Consumers.vmLifecycle.durable);
    const m = await cons.next({ expires: 3000 });
    expect(m?.subject).toBe(Subjects.command("vm", "create"));
    m!.working();
    expect(await m!.ackAck()).toBe(true);
    expect((await jsPublish(c("vm-lifecycle"), Subjects.result(create.id), {})).stream).toBe(Streams.results.name);
    const kv = await runtime.openBucket(c("vm-lifecycle").nc, "commandState");
    await kv.put(create.id, "{}");
    expect((await kv.get(create.id))?.string()).toBe("{}");
    expect(fresh()).toEqual([]);
  });

  it("reads approval records, and cannot write them (only the gateway does)", async () => {
    const gw = await runtime.openBucket(c("gateway").nc, "approvals");
    await gw.put("ap-probe-0001", "{}");
    const kv = await runtime.openBucket(c("vm-lifecycle").nc, "approvals");
    expect((await kv.get("ap-probe-0001"))?.string()).toBe("{}");
    await publishDenied(c("vm-lifecycle"), `$KV.${Buckets.approvals.name}.ap-probe-0001`);
  });

  it("cannot take power's commands", async () => {
    await requestDenied(jetstream(c("vm-lifecycle").nc, { timeout: 3000 }).consumers.get(Consumers.power.stream, Consumers.power.durable));
  });
});

describe("remediation", () => {
  it("reads events and command results from its durables, notifies Slack (through IAAS_NOTICES, read by the gateway) and audits", async () => {
    const fresh = since("remediation");
    await jsPublish(c("veba-bridge"), Subjects.event("AlarmStatusChangedEvent"), { Key: 1 });
    const rjs = jetstream(c("remediation").nc, { timeout: 3000 });
    const cons = await rjs.consumers.get(Consumers.remediation.stream, Consumers.remediation.durable);
    const m = await cons.next({ expires: 3000 });
    expect(m?.subject).toBe(Subjects.event("AlarmStatusChangedEvent"));
    expect(await m!.ackAck()).toBe(true);

    // Our own power-offs: the results of power commands, on its own durable.
    await jsPublish(c("power"), Subjects.result("cmd-remediation-reads"), { id: "cmd-remediation-reads" });
    const results = await rjs.consumers.get(Consumers.remediationResults.stream, Consumers.remediationResults.durable);
    const r = await nextOn(results, Subjects.result("cmd-remediation-reads"));
    expect(await r.ackAck()).toBe(true);

    // A notice is stored (publish ack from IAAS_NOTICES) and the gateway pulls it from its durable.
    const notice = { id: "rem-permissions-probe", text: "probe" };
    expect((await jsPublish(c("remediation"), noticeSubject("remediation.action"), notice)).stream).toBe(Streams.notices.name);
    const gcons = await jetstream(c("gateway").nc, { timeout: 3000 }).consumers.get(Consumers.gatewayNotices.stream, Consumers.gatewayNotices.durable);
    const n = await nextOn(gcons, noticeSubject("remediation.action"), (x) => x.json<{ id?: string }>().id === notice.id);
    expect(n.json()).toEqual(notice);
    expect(await n.ackAck()).toBe(true);

    expect((await jsPublish(c("remediation"), Subjects.audit("remediation"), {})).stream).toBe(Streams.audit.name);
    const kv = await new Kvm(jetstream(c("remediation").nc, { timeout: 3000 })).open(Buckets.remediation.name);
    await kv.put("vm-42", "cooldown");
    expect(fresh()).toEqual([]);
  });

  it("may not publish results, events or another's notices, nor take the gateway's notices", async () => {
    await publishDenied(c("remediation"), noticeSubject("command.dead-letter"));
    await requestDenied(jetstream(c("remediation").nc, { timeout: 3000 }).consumers.get(Consumers.gatewayNotices.stream, Consumers.gatewayNotices.durable));
    await requestDenied(jsPublish(c("remediation"), Subjects.result("cmd-remediation")), Subjects.result("cmd-remediation"));
    await requestDenied(jsPublish(c("remediation"), Subjects.event("AlarmStatusChangedEvent")), Subjects.event("AlarmStatusChangedEvent"));
  });

  it("reads the pause the gateway writes in iaas_remediation_control, and cannot change it", async () => {
    const gw = await runtime.openBucket(c("gateway").nc, "remediationControl");
    await gw.put(PAUSE_KEY, JSON.stringify({ probe: "permissions" }));
    const kv = await runtime.openBucket(c("remediation").nc, "remediationControl");
    expect((await kv.get(PAUSE_KEY))?.json()).toEqual({ probe: "permissions" });
    await publishDenied(c("remediation"), `$KV.${Buckets.remediationControl.name}.${PAUSE_KEY}`);
    await gw.delete(PAUSE_KEY);
  });
});

describe("veba-bridge: publishes vSphere events, reads nothing", () => {
  it("publishes vsphere.event.<Class> into VSPHERE_EVENTS (pub ack)", async () => {
    const fresh = since("veba-bridge");
    expect((await jsPublish(c("veba-bridge"), Subjects.event("VmPoweredOffEvent"), { Key: 7 })).stream).toBe(Streams.events.name);
    expect(fresh()).toEqual([]);
  });

  it("cannot subscribe to iaas.> or to the events it publishes, nor read them from JetStream", async () => {
    await subscribeDenied(c("veba-bridge"), "iaas.>");
    await subscribeDenied(c("veba-bridge"), Subjects.eventsAll);
    await requestDenied(jetstream(c("veba-bridge").nc, { timeout: 3000 }).consumers.get(Consumers.remediation.stream, Consumers.remediation.durable));
    await requestDenied(jetstreamManager(c("veba-bridge").nc, { checkAPI: false, timeout: 3000 }).then((j) => j.streams.info(Streams.commands.name)));
  });

  it("cannot publish results, commands, notices, or call vCenter", async () => {
    await requestDenied(jsPublish(c("veba-bridge"), Subjects.result("cmd-bridge")), Subjects.result("cmd-bridge"));
    await publishDenied(c("veba-bridge"), Subjects.result("cmd-bridge"));
    await publishDenied(c("veba-bridge"), Subjects.notify("bridge"));
    await requestDenied(c("veba-bridge").nc.request(ProxyEndpoints.vmGet.subject, enc.encode("{}"), { timeout: 2000 }), ProxyEndpoints.vmGet.subject);
  });
});

describe("vcenter-proxy: answers vcenter.*, publishes nothing", () => {
  it.each(USERS.filter((u) => u !== "vcenter-proxy" && u !== "admin"))("%s may not serve vcenter.>", async (u) => {
    await subscribeDenied(c(u), "vcenter.>", "q");
    await subscribeDenied(c(u), ProxyEndpoints.vmPower.subject);
  });

  it("subscribes vcenter.> and answers; may not publish results, events or notices", async () => {
    await subscribeAllowed(c("vcenter-proxy"), "vcenter.>", ProxyEndpoints.vmGet.subject);
    await publishDenied(c("vcenter-proxy"), Subjects.result("cmd-proxy"));
    await publishDenied(c("vcenter-proxy"), Subjects.event("VmPoweredOffEvent"));
    await publishDenied(c("vcenter-proxy"), Subjects.notify("proxy"));
    await requestDenied(jetstream(c("vcenter-proxy").nc, { timeout: 3000 }).publish(Subjects.result("cmd-proxy"), enc.encode("{}")));
  });

  it("callers reach only the endpoints their job needs", async () => {
    const E = ProxyEndpoints;
    // The gateway answers info/list/templates itself; it changes nothing in vCenter.
    for (const ep of [E.vmGet, E.vmInfo, E.vmList, E.templateList]) await publishAllowed(c("gateway"), ep.subject);
    for (const ep of [E.vmPower, E.vmCreate, E.vmDestroy, E.vmReconfigure, E.vmRelocate]) await publishDenied(c("gateway"), ep.subject);
    await publishAllowed(c("power"), E.vmPower.subject);
    for (const ep of [E.vmCreate, E.vmClone, E.vmDestroy, E.vmReconfigure]) await publishAllowed(c("vm-lifecycle"), ep.subject);
    for (const ep of [E.vmRelocate, E.eventsRead, E.vmPower]) await publishDenied(c("vm-lifecycle"), ep.subject);
    // Remediation resizes, restarts opted-in VMs and moves them; it never creates or deletes.
    for (const ep of [E.vmReconfigure, E.vmRelocate, E.datastoreVms, E.vmPower]) await publishAllowed(c("remediation"), ep.subject);
    for (const ep of [E.vmCreate, E.vmClone, E.vmDestroy]) await publishDenied(c("remediation"), ep.subject);
    // The bridge's built-in poller reads events; nothing else.
    await publishAllowed(c("veba-bridge"), E.eventsRead.subject);
    for (const ep of [E.vmGet, E.vmInfo, E.vmDestroy]) await publishDenied(c("veba-bridge"), ep.subject);
  });
});

describe("gateway", () => {
  it("keeps its request records in iaas_requests, and no one else's", async () => {
    const kv = await runtime.openBucket(c("gateway").nc, "requests");
    await kv.create("cmd-gateway-probe", "{}");
    expect((await kv.get("cmd-gateway-probe"))?.string()).toBe("{}");
    const state = await new Kvm(jetstream(c("gateway").nc, { timeout: 3000 })).open(Buckets.commandState.name);
    await requestDenied(state.get("cmd-gateway-probe"));
    await requestDenied(state.put("cmd-gateway-probe", "{}"));
    await requestDenied(jetstreamManager(c("gateway").nc, { checkAPI: false, timeout: 3000 }).then((j) => j.streams.info(`KV_${Buckets.commandState.name}`)));
  });

  it("may not publish results, events, notices or dead letters, nor consume commands", async () => {
    await requestDenied(jsPublish(c("gateway"), Subjects.result("cmd-gateway")), Subjects.result("cmd-gateway"));
    await requestDenied(jsPublish(c("gateway"), Subjects.event("VmPoweredOffEvent")), Subjects.event("VmPoweredOffEvent"));
    await requestDenied(jsPublish(c("gateway"), Subjects.deadLetter("power", "off")), Subjects.deadLetter("power", "off"));
    await publishDenied(c("gateway"), Subjects.notify("gateway"));
    await requestDenied(jsPublish(c("gateway"), noticeSubject("remediation.action")), noticeSubject("remediation.action"));
    // Notices come from its durable, not from core NATS.
    await subscribeDenied(c("gateway"), Subjects.notifyAll);
    await requestDenied(jetstream(c("gateway").nc, { timeout: 3000 }).consumers.get(Consumers.power.stream, Consumers.power.durable));
  });
});

describe("micro-service discovery", () => {
  it.each(Object.values(ServiceNames))("%s answers $SRV for its own name only", async (u) => {
    await subscribeAllowed(c(u), `$SRV.PING.${u}`, `$SRV.PING.${u}`);
    const other = u === "power" ? ServiceNames.gateway : ServiceNames.power;
    await subscribeDenied(c(u), `$SRV.PING.${other}`);
    await subscribeDenied(c(u), `$SRV.>`);
  });

  it("admin discovers every service from the JetStream account (`nats micro ls`: one request, many answers)", async () => {
    const micros = await Promise.all(Object.values(ServiceNames).map((u) => runtime.addMicroService(c(u).nc, u, "0.0.0", "discovery test")));
    try {
      for (const u of Object.values(ServiceNames)) await c(u).nc.flush();
      const names: string[] = [];
      for await (const m of await c("admin").nc.requestMany("$SRV.PING", enc.encode(""), { maxMessages: micros.length, maxWait: 5000 })) names.push((m.json() as { name: string }).name);
      expect(names.sort()).toEqual(Object.values(ServiceNames).sort());
    } finally {
      for (const m of micros) await m.stop();
    }
  });

  it.each(Object.values(ServiceNames))("%s may not ask any service's $SRV handlers (only admin does)", async (u) => {
    await publishDenied(c(u), "$SRV.PING");
    await publishDenied(c(u), `$SRV.INFO.${ServiceNames.vcenterProxy}`);
  });
});

/**
 * A request's reply subject is chosen by whoever sends it, and NATS checks no permission on it. A
 * responder that answered any reply subject would publish, under its own user, wherever the caller
 * pointed it: `$JS.API.STREAM.PURGE.IAAS_AUDIT` wipes the audit trail. Every service user here
 * aims every service responder (the proxy's endpoints, each service's `$SRV` handlers) at every
 * internal subject; afterwards nothing arrived there and no stream, consumer or bucket changed.
 */
describe("replies cannot be aimed at internal subjects", () => {
  const STREAMS = [...Object.values(Streams).map((s) => s.name), ...Object.values(Buckets).map((b) => `KV_${b.name}`)];
  const TARGETS = [
    ...STREAMS.flatMap((s) => [`$JS.API.STREAM.PURGE.${s}`, `$JS.API.STREAM.DELETE.${s}`]),
    ...Object.values(Consumers).map((k) => `$JS.API.CONSUMER.DELETE.${k.stream}.${k.durable}`),
    ...Object.values(Buckets).map((b) => `$KV.${b.name}.relayed`),
    Subjects.command("vm", "delete"),
    Subjects.result("cmd-relayed"),
    Subjects.audit("relayed"),
    Subjects.event("RelayedEvent"),
    Subjects.deadLetter("power", "off"),
    noticeSubject("remediation.action"),
  ];
  const SERVICES = Object.values(ServiceNames);

  /** A concrete subject a grant allows (`*` and `>` filled in), to send a request to. */
  const sample = (grant: string) => grant.replace(/\*/g, "relay").replace(/>$/, "relay-probe");

  async function counts(): Promise<Map<string, number>> {
    const jsm = await jetstreamManager(c("admin").nc);
    const out = new Map<string, number>();
    for (const s of STREAMS) out.set(s, (await jsm.streams.info(s)).state.messages);
    for (const k of Object.values(Consumers)) out.set(`${k.stream} > ${k.durable}`, (await jsm.consumers.info(k.stream, k.durable)).num_pending);
    return out;
  }

  it.each(SERVICES)("%s cannot relay through any service's answers (vcenter endpoints, $SRV)", async (attacker) => {
    // Every stream, consumer and bucket there (an earlier case may have lost one) and holding
    // something, so that a purge would show.
    await bootstrap({ nc: c("admin").nc, runtime, contracts, log });
    const js = jetstream(c("admin").nc);
    for (const s of Object.values(Streams)) await js.publish(sample(s.subjects[0]!), enc.encode("{}"));
    for (const b of Object.values(Buckets)) await (await new Kvm(js).open(b.name)).put("seed", "{}");

    const micros = new Map<NatsUserName, Awaited<ReturnType<typeof runtime.addMicroService>>>();
    for (const u of SERVICES) micros.set(u, await runtime.addMicroService(c(u).nc, u, "0.0.0", "relay test"));
    // The handlers that ran: a request with a hostile reply must not even start (a vm-destroy would destroy).
    const handled: string[] = [];
    for (const ep of Object.values(ProxyEndpoints)) {
      runtime.addJsonEndpoint(
        micros.get("vcenter-proxy")!,
        ep as Parameters<typeof runtime.addJsonEndpoint>[1],
        async (_req, msg) => {
          handled.push(msg.reply ?? "");
          throw new contracts.IaasError("IAAS_NOT_FOUND", "relay test stand-in");
        },
        log,
      );
    }
    const watch = [...TARGETS.map((t) => c("admin").nc.subscribe(t)), ...TARGETS.map((t) => observer.subscribe(t))];
    try {
      await c("admin").nc.flush();
      await observer.flush();
      const before = await counts();
      const responders = [
        ...Object.values(ProxyEndpoints).map((e) => e.subject),
        ...SERVICES.flatMap((u) => contracts.MicroApi.subjects(u).map(sample)),
      ];
      for (const subject of responders) for (const reply of TARGETS) c(attacker).nc.publish(subject, enc.encode('{"vm":"DC0_H0_VM0"}'), { reply });
      await c(attacker).nc.flush();

      // Every responder has handled what came before once it answers the admin after it.
      for (const ep of Object.values(ProxyEndpoints)) {
        const caller = SERVICES.find((u) => contracts.mayPublish(u, ep.subject))!;
        await c(caller).nc.request(ep.subject, enc.encode("{}"), { timeout: 5000 });
      }
      for (const u of SERVICES) await c("admin").nc.request(`$SRV.PING.${u}`, enc.encode(""), { timeout: 5000 });
      await c("admin").nc.flush();
      await observer.flush();

      const arrived = watch.filter((w) => w.getReceived() > 0).map((w) => w.getSubject());
      expect(arrived, `${attacker} relayed into these`).toEqual([]);
      expect(await counts()).toEqual(before);
      expect(handled.filter((r) => !SERVICES.some((u) => r.startsWith(`${contracts.inboxPrefixFor(u)}.`))), "handled with a hostile reply").toEqual([]);
    } finally {
      for (const w of watch) w.unsubscribe();
      for (const m of micros.values()) await m.stop();
    }
  });
});

/**
 * JetStream answers whatever reply subject the asker set, and no user permission applies to its
 * answers: a publish ack, an API response, an ack's reply, a message get, a pulled message. In one
 * account a service user could aim them at `$JS.API.STREAM.DELETE.<stream>` (the stream is gone)
 * or at `iaas.cmd.vm.delete`. The service users live in IAAS_APPS, JetStream in IAAS: the answers
 * land in IAAS_APPS, where no stream-changing API is imported and `iaas.cmd.>` reaches no stream
 * (nats-server does not route an answer through the importing account's imports).
 */
describe("JetStream answers cannot be aimed at internal subjects", () => {
  const STREAMS = [...Object.values(Streams).map((s) => s.name), ...Object.values(Buckets).map((b) => `KV_${b.name}`)];
  // Also subjects IAAS_APPS imports (a bucket, the audit stream): an answer must not go on through an import.
  const REPLIES = (stream: string) => [`$JS.API.STREAM.DELETE.${stream}`, `$JS.API.STREAM.PURGE.${stream}`, Subjects.command("vm", "delete"), "iaas.notify.x", `$KV.${Buckets.requests.name}.relayed`, Subjects.audit("relayed")];
  // vcenter-proxy publishes nothing but answers into inboxes: it cannot ask JetStream anything.
  const SERVICES = Object.values(ServiceNames).filter((u) => contracts.natsUser(u).publish.some((g) => g.subject.startsWith("$JS.")));
  const sample = (grant: string) => grant.replace(/\*/g, "relay").replace(/>$/, `relay-${randomBytes(4).toString("hex")}`);
  /** The stream (or bucket stream) a subject is stored in, if any. */
  const storedIn = (subject: string): string | undefined => {
    for (const s of Object.values(Streams)) if (s.subjects.some((p) => contracts.subjectMatches(p, subject))) return s.name;
    for (const b of Object.values(Buckets)) if (subject.startsWith(`$KV.${b.name}.`)) return `KV_${b.name}`;
    return undefined;
  };

  async function counts(): Promise<Map<string, number>> {
    const jsm = await jetstreamManager(c("admin").nc);
    const out = new Map<string, number>();
    for (const s of STREAMS) out.set(s, await jsm.streams.info(s).then((i) => i.state.messages, () => -1));
    return out;
  }

  it.each(SERVICES)("%s: acks, pulls, publishes, KV and message gets with hostile reply subjects change no stream", async (attacker) => {
    await bootstrap({ nc: c("admin").nc, runtime, contracts, log });
    const ajs = jetstream(c("admin").nc);
    for (const s of Object.values(Streams)) await ajs.publish(sample(s.subjects[0]!), enc.encode("{}"));
    for (const b of Object.values(Buckets)) await (await new Kvm(ajs).open(b.name)).put("seed", "{}");
    // Something for each durable to deliver (filters may be narrower than the stream).
    for (const k of Object.values(Consumers)) await ajs.publish(sample(k.filter), enc.encode("{}"));

    const nc = c(attacker).nc;
    const publish = contracts.natsUser(attacker).publish.map((g) => g.subject);
    const durables = Object.values(Consumers).filter((k) => publish.includes(contracts.JsApi.consumerNext(k.stream, k.durable)));
    // The ack subjects of messages really delivered to this user (JetStream answers an ack's reply only then).
    const acks: string[] = [];
    for (const k of durables) {
      const inbox = `${contracts.inboxPrefixFor(attacker)}.pull-${randomBytes(4).toString("hex")}`;
      const sub = nc.subscribe(inbox, { max: 1 });
      nc.publish(contracts.JsApi.consumerNext(k.stream, k.durable), enc.encode(JSON.stringify({ batch: 1, expires: 2e9 })), { reply: inbox });
      for await (const m of sub) if (m.reply) acks.push(m.reply);
    }
    expect(acks.length, "a message delivered on each durable").toBe(durables.length);

    const arrivedJs: string[] = [];
    const watchJs = ["iaas.cmd.>", "iaas.notify.>", "$JS.API.STREAM.DELETE.>", "$JS.API.STREAM.PURGE.>", "$KV.*.relayed", Subjects.audit("relayed")].map((t) => c("admin").nc.subscribe(t, { callback: (_e, m) => void arrivedJs.push(m.subject) }));
    const notices: unknown[] = [];
    const watchApps = observer.subscribe("iaas.notify.>", {
      callback: (_e, m) => {
        try {
          notices.push(m.json());
        } catch {
          notices.push(m.string());
        }
      },
    });
    try {
      await c("admin").nc.flush();
      await observer.flush();
      const before = await counts();
      const expected = new Map(before);
      const wrote = (subject: string) => {
        const s = storedIn(subject)!;
        expected.set(s, expected.get(s)! + 1);
      };
      const sent: string[] = [];
      for (const stream of STREAMS) {
        for (const reply of REPLIES(stream)) {
          const send = (subject: string, data: string) => {
            nc.publish(subject, enc.encode(data), { reply });
            sent.push(subject);
          };
          for (const ack of acks) send(ack, "+WPI");
          for (const k of durables) send(contracts.JsApi.consumerNext(k.stream, k.durable), JSON.stringify({ batch: 1, no_wait: true }));
          for (const g of publish) {
            if (g.startsWith("$JS.API.STREAM.MSG.GET.")) send(g, JSON.stringify({ seq: 1 }));
            else if (g.startsWith("$JS.API.DIRECT.GET.")) send(g.endsWith(".>") ? sample(g) : g, JSON.stringify({ seq: 1 }));
            else if (g.startsWith("$JS.API.") && !g.includes("MSG.NEXT")) send(g, "");
            else if (!g.startsWith("$JS.") && !g.startsWith("_") && storedIn(sample(g))) {
              const subject = sample(g);
              send(subject, "{}");
              wrote(subject);
            }
          }
        }
      }
      await nc.flush();
      // A request of the attacker's own after all of them: JetStream has answered what came before.
      await jetstreamManager(nc, { checkAPI: false, timeout: 5000 }).then((j) => j.streams.info(publish.includes(contracts.JsApi.streamInfo(Streams.audit.name)) ? Streams.audit.name : Streams.events.name));
      await c("admin").nc.flush();
      await observer.flush();

      expect(sent.length).toBeGreaterThan(0);
      expect(await counts(), `${attacker}: every stream there, holding what it held plus what was published`).toEqual(expected);
      // Only what the attacker itself published there (the gateway publishes commands).
      expect(arrivedJs.filter((s) => !sent.includes(s)), "answers that reached these in IAAS").toEqual([]);
      // Answers aimed at iaas.notify.x land in IAAS_APPS, where no stream takes them (IAAS_NOTICES is
      // among the counts above); none of them is a notice either, since no answer carries the
      // asker's bytes as they are.
      expect(notices.filter((n) => contracts.NoticeSchema.safeParse(n).success), "answers that read as notices").toEqual([]);
    } finally {
      for (const w of watchJs) w.unsubscribe();
      watchApps.unsubscribe();
    }
  });
});
