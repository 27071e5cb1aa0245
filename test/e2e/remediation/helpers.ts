/**
 * A world for remediation, on real parts: a private nats-server, the vCenter simulator, vcenter-proxy,
 * the VEBA bridge (real HTTP), the event poller when asked, remediation itself, and the gateway
 * relaying notices to the Slack stand-in (chat.postMessage on the notify channel). Only Slack is a
 * stand-in. Tests read vCenter back over their own SOAP session.
 */
import { randomUUID } from "node:crypto";
import { request } from "node:http";
import {
  Consumers,
  NoticeSchema,
  RemediationAuditSchema,
  Streams,
  Subjects,
  eventMsgId,
  parseVcenterSources,
  type Notice,
  type RemediationAudit,
  type VsphereEvent,
} from "@iaas/contracts";
import { DEFAULT_POLICY, policyFromObject, type Policy, type RemediationSettings } from "@iaas/policy";
import {
  connectNats,
  createLogger,
  createMetrics,
  ensureConsumer,
  ensureStreams,
  jetstreamFor,
  loadConfig,
  BaseEnvSchema,
  openBucket,
  type Jet,
  type KV,
  type Metrics,
  type NatsConnection,
} from "@iaas/runtime";
import { SlackStandIn, postSigned, slashCommandBody, startNatsServer, startVcsim, waitUntil, type NatsServer, type PostResult, type Vcsim, type VcsimOptions } from "@iaas/testkit";
import { VimClient, listDatastores, listVmSummaries, type MoRef } from "@iaas/vsphere";
import { Vcenter } from "@iaas/vcenter-proxy";
// Not a dependency of the root package: imported by path.
import { buildPoller, type Bridge, type Poller } from "../../../services/veba-bridge/src/mod.js";
import { buildGateway, ensureGatewayResources, GatewayEnvSchema, type Gateway } from "@iaas/gateway";
import { buildRemediation, type Remediation } from "@iaas/remediation";
import { buildPowerService } from "@iaas/power";
import { startBridge, startProxy } from "../harness.js";

export const log = createLogger("remediation-test", process.env.TEST_LOG_LEVEL ?? "silent");
export const NOTIFY_CHANNEL = "C0NOTIFY";
const GATEWAY_SECRET = "remediation-test-secret";
/** An IT admin of the world's policy: the simulator's demo VMs have no owner, so only admins act on them from Slack. */
export const REMEDIATION_ADMIN = "U0ADMIN";

export type RemediationOverrides = Partial<RemediationSettings>;

export interface WorldOptions {
  remediation?: RemediationOverrides;
  vcsim?: VcsimOptions;
  /** Also run the event poller (bridge process) against the simulator. */
  poller?: { eventTypes?: string[]; intervalMs?: number };
  /** Deferred changes re-checked this often; default: practically never (tests drive it). */
  pendingRecheckMs?: number;
  /** Start the gateway with the world (default true); more replicas with `startGateway`. */
  gateway?: boolean;
  /** Also run the power service (`/iaas power …` through the gateway). */
  power?: boolean;
  /**
   * A second simulator, served by the proxy as this VCENTERS id; remediation gets VCENTER_SOURCES
   * `default=<sim.url>,<id>=<simB.url>` (events from any other source are refused).
   */
  secondVcenter?: string;
}

export interface VmState {
  name: string;
  moref: string;
  powerState: string;
  numCpu: number;
  memoryMB: number;
  datastores: string[];
}

/** The four ways VEBA sends an event: binary or structured, router or Tanzu type family. */
export type Format = "binary-router" | "binary-tanzu" | "structured-router" | "structured-tanzu";
export const FORMATS: Format[] = ["binary-router", "binary-tanzu", "structured-router", "structured-tanzu"];

export interface World {
  nats: NatsServer;
  sim: Vcsim;
  /** The second simulator (the `secondVcenter` option). */
  simB: Vcsim | undefined;
  slack: SlackStandIn;
  observer: VimClient;
  nc: NatsConnection;
  jet: Jet;
  kv: KV;
  policy: Policy;
  metrics: Metrics;
  bridgeUrl: string;
  /** The vCenter URL events are said to come from (the bridge's CloudEvent source, the poller's source). */
  source: string;
  clock: { now: number; advance(ms: number): void };
  remediation: Remediation;
  poller: Poller | undefined;
  /** Notices seen on iaas.notify.> (in order). */
  notices: Notice[];
  stopRemediation(): Promise<void>;
  startRemediation(): Promise<void>;
  /** POSTs a vSphere event to the bridge as VEBA would; resolves with its id (Nats-Msg-Id) once stored. */
  post(eventClass: string, data: Record<string, unknown>, format?: Format, source?: string): Promise<{ status: number; json: unknown; eventId: string }>;
  /** A red (or other) alarm on a VM or datastore, in VEBA's PascalCase, with a fresh key. */
  alarm(alarm: string, entity: { type: "VirtualMachine" | "Datastore"; name: string }, opts?: { from?: string; to?: string; key?: number }): Promise<Record<string, unknown>>;
  powerOffEvent(vm: string): Promise<Record<string, unknown>>;
  /** Waits until remediation has taken and acked every event in the stream. */
  caughtUp(): Promise<void>;
  /** The notices caused by one event (or deferral). */
  noticesFor(cause: string): Notice[];
  waitNotice(what: string, pred: (n: Notice) => boolean): Promise<Notice>;
  /** Remediation audit records, oldest first. */
  audits(): Promise<RemediationAudit[]>;
  /** A VM as vCenter has it, read over the test's own SOAP session. */
  vm(name: string): Promise<VmState>;
  moref(name: string): Promise<MoRef>;
  /** chat.postMessage calls to the notify channel. */
  slackPosts(): { text: string }[];
  /** Starts one more gateway replica (own connection, same notify channel); resolves with its stop. */
  startGateway(): Promise<() => Promise<void>>;
  /** A signed `/iaas <text>` to the first gateway, as Slack sends it (needs the `gateway` option). */
  slash(text: string, userId?: string): Promise<PostResult>;
  close(): Promise<void>;
}

let keySeq = 7_000_000;

export function remediationPolicy(overrides: RemediationOverrides = {}): Policy {
  return policyFromObject({ ...DEFAULT_POLICY, remediation: { ...DEFAULT_POLICY.remediation, ...overrides } }, { source: "remediation test policy", env: { IAAS_ADMINS: REMEDIATION_ADMIN } });
}

export async function startWorld(opts: WorldOptions = {}): Promise<World> {
  const [nats, sim, slack, simB] = await Promise.all([startNatsServer(), startVcsim(opts.vcsim), SlackStandIn.start(), opts.secondVcenter ? startVcsim(opts.vcsim) : undefined]);
  const stops: (() => Promise<unknown>)[] = [];
  const connectAs = (name: string) => connectNats(loadConfig(BaseEnvSchema, { NATS_URL: nats.url }), name, log);
  const policy = remediationPolicy(opts.remediation);

  // vcenter-proxy
  const proxyNc = await connectAs("vcenter-proxy");
  const client = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password });
  const clientB = simB ? await VimClient.connect({ url: simB.url, username: simB.username, password: simB.password }) : undefined;
  const vcenters = new Map([["default", new Vcenter("default", client, log)]]);
  if (clientB && opts.secondVcenter) vcenters.set(opts.secondVcenter, new Vcenter(opts.secondVcenter, clientB, log));
  const proxy = await startProxy({ nc: proxyNc, vcenters, log, metrics: createMetrics("vcenter-proxy"), config: { taskTimeoutMs: 30_000 } });
  stops.push(async () => {
    await proxy.stop();
    await proxyNc.close();
    await client.logout().catch(() => undefined);
    await clientB?.logout().catch(() => undefined);
    await simB?.stop();
  });

  // the bridge (and the poller)
  const bridgeNc = await connectAs("veba-bridge");
  const bridgeJet = await jetstreamFor(bridgeNc);
  await ensureStreams(bridgeJet.jsm, ["events"], log);
  const bridgeMetrics = createMetrics("veba-bridge");
  const bridge: Bridge = await startBridge({ nc: bridgeNc, jet: bridgeJet, log, metrics: bridgeMetrics, config: { host: "127.0.0.1", port: 0, bodyLimit: 1024 * 1024, publishTimeoutMs: 5_000, auth: {} } });
  const source = sim.url;
  let poller: Poller | undefined;
  if (opts.poller) {
    poller = buildPoller({
      nc: bridgeNc,
      jet: bridgeJet,
      checkpoints: await openBucket(bridgeNc, "eventPoller"),
      log,
      metrics: bridgeMetrics,
      config: { source, intervalMs: opts.poller.intervalMs ?? 100, batch: 100, eventTypes: opts.poller.eventTypes, start: "latest", requestTimeoutMs: 10_000, publishTimeoutMs: 5_000 },
    });
    poller.start();
  }
  stops.push(async () => {
    await poller?.stop();
    await bridge.stop();
    await bridgeNc.close();
  });

  // the gateway: relays notices to the Slack notify channel; replicas share its durable consumers
  const gwConfig = GatewayEnvSchema.parse({
    SLACK_SIGNING_SECRET: GATEWAY_SECRET,
    SLACK_API_URL: slack.apiUrl,
    GATEWAY_HOST: "127.0.0.1",
    GATEWAY_PORT: "0",
    SLACK_BOT_TOKEN: "xoxb-e2e",
    SLACK_NOTIFY_CHANNEL: NOTIFY_CHANNEL,
    ...(opts.secondVcenter ? { VCENTERS: opts.secondVcenter } : {}),
  });
  const startGateway = async (): Promise<{ port: number | undefined; stop: () => Promise<void> }> => {
    const gwNc = await connectAs("gateway");
    await ensureGatewayResources(gwNc, log);
    const gateway: Gateway = buildGateway({ nc: gwNc, config: gwConfig, log, metrics: createMetrics("gateway"), policy });
    const { port } = await gateway.start();
    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      await gateway.stop();
      await gwNc.close();
    };
    stops.push(stop);
    return { port, stop };
  };
  const firstGateway = opts.gateway === false ? undefined : await startGateway();

  // power: `/iaas power off` through the gateway
  if (opts.power) {
    const powerNc = await connectAs("power");
    const powerJet = await jetstreamFor(powerNc);
    await ensureStreams(powerJet.jsm, ["commands", "results", "audit", "deadLetters"], log);
    await ensureConsumer(powerJet.jsm, "power");
    const power = buildPowerService({ nc: powerNc, jet: powerJet, state: await openBucket(powerNc, "commandState"), policy, log, metrics: createMetrics("power"), config: { proxyTimeoutMs: 30_000, concurrency: 4 } });
    await power.start();
    stops.push(async () => {
      await power.stop();
      await powerNc.close();
    });
  }

  // remediation
  const remNc = await connectAs("remediation");
  const jet = await jetstreamFor(remNc);
  await ensureStreams(jet.jsm, ["events", "audit", "results", "notices"], log);
  await ensureConsumer(jet.jsm, "remediation");
  await ensureConsumer(jet.jsm, "remediationResults");
  const kv = await openBucket(remNc, "remediation");
  const metrics = createMetrics("remediation");
  const clock = {
    now: Date.now(),
    advance(ms: number) {
      clock.now += ms;
    },
  };
  const make = () =>
    buildRemediation({
      nc: remNc,
      jet,
      state: kv,
      policy,
      log,
      metrics,
      config: {
        lookupTimeoutMs: 10_000,
        taskTimeoutMs: 30_000,
        pendingRecheckMs: opts.pendingRecheckMs ?? 3_600_000,
        ...(simB && opts.secondVcenter ? { vcenterSources: parseVcenterSources(`default=${sim.url},${opts.secondVcenter}=${simB.url}`) } : {}),
      },
      now: () => clock.now,
    });
  let remediation = make();
  await remediation.start();
  let running = true;

  // what the test watches
  const nc = await connectAs("remediation-test");
  const notices: Notice[] = [];
  const sub = nc.subscribe(Subjects.notifyAll);
  void (async () => {
    for await (const m of sub) {
      const r = NoticeSchema.safeParse(m.json());
      if (r.success) notices.push(r.data);
      else notices.push({ id: "malformed-notice", kind: "remediation.failed", severity: "error", text: `malformed: ${m.string()}`, at: new Date().toISOString() });
    }
  })();
  await nc.flush();
  const observer = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password });
  const bridgeUrl = `http://127.0.0.1:${bridge.port}/events`;

  const moref = async (name: string): Promise<MoRef> => {
    const vm = (await listVmSummaries(observer)).find((v) => v.name === name);
    if (vm) return vm.ref;
    const ds = (await listDatastores(observer)).find((d) => d.name === name);
    if (ds) return ds.ref;
    throw new Error(`no VM or datastore ${name} in the simulator`);
  };

  const world: World = {
    nats,
    sim,
    simB,
    slack,
    observer,
    nc,
    jet,
    kv,
    policy,
    metrics,
    bridgeUrl,
    source,
    clock,
    get remediation() {
      return remediation;
    },
    poller,
    notices,
    async stopRemediation() {
      if (!running) return;
      running = false;
      await remediation.stop();
    },
    async startRemediation() {
      if (running) return;
      remediation = make();
      await remediation.start();
      running = true;
    },
    async post(eventClass, data, format = "binary-tanzu", source = sim.url) {
      const key = Number(data.Key);
      const id = randomUUID();
      const router = format.endsWith("router");
      const type = router ? "com.vmware.event.router/event" : `com.vmware.vsphere.${eventClass}.v0`;
      let headers: Record<string, string>;
      let body: string;
      if (format.startsWith("binary")) {
        headers = { "content-type": "application/json", "ce-specversion": "1.0", "ce-id": id, "ce-source": source, "ce-type": type, "ce-time": new Date().toISOString(), ...(router ? { "ce-subject": eventClass } : {}) };
        body = JSON.stringify(data);
      } else {
        headers = { "content-type": "application/cloudevents+json" };
        body = JSON.stringify({ specversion: "1.0", id, source, type, ...(router ? { subject: eventClass } : {}), datacontenttype: "application/json", time: new Date().toISOString(), data });
      }
      const a = await httpPost(bridgeUrl, headers, body);
      return { ...a, eventId: eventMsgId({ source, eventClass, key, id, data }) };
    },
    async alarm(alarm, entity, o = {}) {
      const ref = await moref(entity.name);
      const key = o.key ?? (keySeq += 1);
      const vmArg = entity.type === "VirtualMachine" ? { Name: entity.name, Vm: { Type: "VirtualMachine", Value: ref.value } } : null;
      const dsArg = entity.type === "Datastore" ? { Name: entity.name, Datastore: { Type: "Datastore", Value: ref.value } } : null;
      const from = o.from ?? "green";
      const to = o.to ?? "red";
      return {
        Key: key,
        ChainId: key,
        CreatedTime: new Date().toISOString(),
        UserName: "",
        Datacenter: { Name: "DC0", Datacenter: { Type: "Datacenter", Value: "datacenter-2" } },
        ComputeResource: null,
        Host: null,
        Vm: vmArg,
        Ds: dsArg,
        Net: null,
        Dvs: null,
        FullFormattedMessage: `Alarm '${alarm}' on ${entity.name} changed from ${cap(from)} to ${cap(to)}`,
        ChangeTag: "",
        Alarm: { Name: alarm, Alarm: { Type: "Alarm", Value: "alarm-6" } },
        Source: { Name: "Datacenters", Entity: { Type: "Folder", Value: "group-d1" } },
        Entity: { Name: entity.name, Entity: { Type: entity.type, Value: ref.value } },
        From: from,
        To: to,
      };
    },
    async powerOffEvent(vm) {
      const ref = await moref(vm);
      const key = (keySeq += 1);
      return {
        Key: key,
        ChainId: key,
        CreatedTime: new Date().toISOString(),
        UserName: "",
        Datacenter: { Name: "DC0", Datacenter: { Type: "Datacenter", Value: "datacenter-2" } },
        Vm: { Name: vm, Vm: { Type: "VirtualMachine", Value: ref.value } },
        FullFormattedMessage: `${vm} on DC0_H0 in DC0 is powered off`,
        Template: false,
      };
    },
    async caughtUp() {
      await waitUntil("remediation to take and ack every event", async () => {
        const i = await jet.jsm.consumers.info(Consumers.remediation.stream, Consumers.remediation.durable);
        return i.num_pending === 0 && i.num_ack_pending === 0;
      });
    },
    noticesFor(cause) {
      return notices.filter((n) => n.cause === cause);
    },
    waitNotice(what, pred) {
      return waitUntil(`a notice: ${what}`, () => notices.find(pred));
    },
    async audits() {
      const info = await jet.jsm.streams.info(Streams.audit.name);
      const out: RemediationAudit[] = [];
      for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
        const m = await jet.jsm.streams.getMessage(Streams.audit.name, { seq });
        const r = RemediationAuditSchema.safeParse(m?.json());
        if (r.success) out.push(r.data);
      }
      return out;
    },
    async vm(name) {
      const [vms, dss] = await Promise.all([listVmSummaries(observer), listDatastores(observer)]);
      const v = vms.find((x) => x.name === name);
      if (!v) throw new Error(`no VM ${name}`);
      const dsName = new Map(dss.map((d) => [d.ref.value, d.name]));
      return { name, moref: v.ref.value, powerState: v.powerState, numCpu: v.numCPU ?? 0, memoryMB: v.memoryMB ?? 0, datastores: v.datastores.map((d) => dsName.get(d.value) ?? d.value) };
    },
    moref,
    slackPosts() {
      return slack.apiCalls("chat.postMessage").filter((c) => c.body.channel === NOTIFY_CHANNEL).map((c) => ({ text: String(c.body.text ?? "") }));
    },
    async startGateway() {
      return (await startGateway()).stop;
    },
    async slash(text, userId = "U0001") {
      if (firstGateway?.port === undefined) throw new Error("the world has no gateway listening for Slack");
      const body = slashCommandBody({ text, user_id: userId, response_url: slack.responseUrl() });
      return postSigned(`http://127.0.0.1:${firstGateway.port}/slack/events`, body, { secret: GATEWAY_SECRET });
    },
    async close() {
      sub.unsubscribe();
      if (running) await remediation.stop();
      await remNc.close();
      for (const s of stops.reverse()) await s().catch(() => undefined);
      await nc.close().catch(() => undefined);
      await observer.logout().catch(() => undefined);
      await Promise.all([nats.dispose(), sim.stop(), slack.close()]);
    },
  };
  return world;
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function httpPost(url: string, headers: Record<string, string>, body: string): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", headers: { ...headers, "content-length": String(Buffer.byteLength(body)) }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = text;
        }
        resolve({ status: res.statusCode ?? 0, json });
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** Publishes an event straight into the stream with another Nats-Msg-Id: a repeat the stream cannot drop (as after its duplicate window). */
export async function publishRaw(w: World, ev: VsphereEvent): Promise<void> {
  await w.jet.js.publish(Subjects.event(ev.eventClass), JSON.stringify(ev), { msgID: `raw-${randomUUID()}` });
}

/** The stored message of an event, by its Nats-Msg-Id. */
export async function storedEvent(w: World, eventId: string | ((msgId: string) => boolean)): Promise<VsphereEvent> {
  const wanted = typeof eventId === "string" ? (id: string) => id === eventId : eventId;
  const info = await w.jet.jsm.streams.info(Streams.events.name);
  for (let seq = info.state.last_seq; seq >= info.state.first_seq; seq--) {
    const m = await w.jet.jsm.streams.getMessage(Streams.events.name, { seq });
    if (wanted(m?.header?.get("Nats-Msg-Id") ?? "")) return m!.json<VsphereEvent>();
  }
  throw new Error(`event ${eventId} is not in the stream`);
}

/** Sum of a counter's values matching the labels. */
export async function counter(w: World, name: string, labels: Record<string, string>): Promise<number> {
  const metric = w.metrics.registry.getSingleMetric(name);
  if (!metric) return 0;
  const data = await metric.get();
  return data.values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((s, v) => s + v.value, 0);
}
