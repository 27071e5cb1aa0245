/**
 * The whole system for fault tests: a private nats-server (or a cluster), the vCenter simulator,
 * the Slack stand-in, and every service as a real child process, plus the observers a test needs
 * to prove "exactly once": a SOAP session of its own (VM state, vCenter events), a NATS
 * connection reading IAAS_RESULTS / IAAS_DLQ / the command-state bucket, and $SRV.PING.
 */
import { createHash, randomUUID } from "node:crypto";
import { mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { Buckets, Consumers, Streams, Subjects, type Command, type FinalResult, type Result } from "@iaas/contracts";
import { createLogger, ensureStreams } from "@iaas/runtime";
import { DEFAULT_POLICY } from "@iaas/policy";
import { VimClient, listVmSummaries, type MoRef, type VimEvent } from "@iaas/vsphere";
import { SlackStandIn, postSigned, slashCommandBody, startNatsServer, startVcsim, type NatsServer, type PostResult, type Vcsim, type VcsimOptions } from "@iaas/testkit";
import { ProcessGroup, isBuilt, type ServiceName, type ServiceProcess } from "./procs.js";

export const SIGNING_SECRET = "faults-signing-secret-not-a-real-one";
/** The bearer token the bridge requires of senders (as BRIDGE_TOKEN). */
export const BRIDGE_TOKEN = "faults-bridge-token-not-a-real-one";
export const ADMIN = "UADMIN1";

export const TEAM = "T0FAULTS";

export interface ServiceSpec {
  name: ServiceName;
  /** Instance label (log file, `svc(label)`); the service name by default. */
  label?: string;
  env?: Record<string, string>;
}

export interface FaultSystemOptions {
  /** A name for the log directory. */
  name: string;
  vcsim?: VcsimOptions;
  /** Services to start, in this order; default vcenter-proxy, power, gateway. */
  services?: ServiceSpec[];
  /** Extra environment for every instance of a service. */
  env?: Partial<Record<ServiceName, Record<string, string>>>;
  /**
   * The operator path for a fast test: the durable consumer is created here, before any service
   * starts, with a shorter ack wait. The runtime's ensureConsumer leaves an existing consumer as
   * it is, so the services use this one. Everything else is as in contracts (Consumers).
   */
  ackWaitMs?: Partial<Record<keyof typeof Consumers, number>>;
  /** NATS URLs of servers the test started itself (a cluster); default: one private server. */
  natsUrls?: string[];
  /** Replicas for the streams and buckets, created here before the services start (a cluster). */
  replicas?: number;
  /** Top-level sections of the policy given to every service in place of the defaults' (`leases` of seconds). */
  policy?: Record<string, unknown>;
}

export interface SlashOutcome {
  /** The command id (computed like the gateway's ids.ts, checked against the ack). */
  id: string;
  triggerId: string;
  responseUrl: string;
  /** The HTTP answer; undefined when the request failed (gateway down or killed mid-request). */
  http?: PostResult;
  error?: string;
}

export interface VmState {
  name: string;
  powerState: string;
  numCpu: number;
  memoryMB: number;
  template: boolean;
}

/** The gateway's command id of a slash command (services/gateway/src/commands/ids.ts): sha256 of team + trigger_id, base32. */
export function commandIdOf(teamId: string, triggerId: string): string {
  const digest = createHash("sha256").update(`slack:${teamId}:${triggerId}`).digest().subarray(0, 15);
  const A = "abcdefghijklmnopqrstuvwxyz234567";
  let out = "";
  let bits = 0;
  let value = 0;
  for (const b of digest) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += A[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += A[(value << (5 - bits)) & 31];
  return `r-${out}`;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Reads a stream from the start, incrementally (by sequence, so it survives reconnects and leader changes). */
export class StreamLog<T> {
  private next = 1;
  readonly items: { seq: number; subject: string; data: T }[] = [];

  constructor(
    private readonly jsm: () => JetStreamManager,
    private readonly stream: string,
    private readonly parse: (raw: unknown) => T,
  ) {}

  async read(): Promise<this> {
    const info = await this.jsm().streams.info(this.stream);
    const last = info.state.last_seq;
    for (; this.next <= last; this.next++) {
      const m = await this.jsm().streams.getMessage(this.stream, { seq: this.next });
      if (!m) continue;
      this.items.push({ seq: m.seq, subject: m.subject, data: this.parse(m.json()) });
    }
    return this;
  }
}

export class FaultSystem {
  readonly procs: ProcessGroup;
  nc!: NatsConnection;
  js!: JetStreamClient;
  jsm!: JetStreamManager;
  observer!: VimClient;
  sim!: Vcsim;
  slack!: SlackStandIn;
  nats: NatsServer | undefined;
  natsUrls: string[] = [];
  stateKv!: KV;
  results!: StreamLog<Result>;
  deadLetters!: StreamLog<{ command: Command; error: { code: string }; deliveries: number }>;
  private gatewayPorts = new Map<string, number>();
  private slashN = 0;
  /** The policy file every service is given (IAAS_POLICY). */
  private readonly policyFile: string;
  /** Slash requests sent and not yet answered (or failed). */
  inflightSlash = 0;
  /** Called when a slash request gets its HTTP answer (fault tests time a kill on it). */
  onSlashAnswer: (() => void) | undefined;

  private constructor(
    readonly opts: FaultSystemOptions,
    readonly logDir: string,
  ) {
    this.procs = new ProcessGroup(logDir);
    this.policyFile = join(logDir, "policy.json");
  }

  static async start(opts: FaultSystemOptions): Promise<FaultSystem> {
    await pruneOldLogs();
    const logDir = await mkdtemp(join(tmpdir(), `iaas-faults-${opts.name}-`));
    const sys = new FaultSystem(opts, logDir);
    try {
      await sys.boot();
    } catch (err) {
      await sys.dispose();
      throw err;
    }
    return sys;
  }

  private async boot(): Promise<void> {
    const { opts } = this;
    // The default policy, except that every user may power every VM: the slash commands come
    // from a fresh user each (rate limits), on VMs nobody owns, and these tests are about faults,
    // not about whose VM it is. Deletes and resizes stay the owner's. JSON is YAML.
    await writeFile(this.policyFile, JSON.stringify({ ...DEFAULT_POLICY, roles: { ...DEFAULT_POLICY.roles, operator: ["power.*:any"] }, ...opts.policy }));
    if (opts.natsUrls) {
      this.natsUrls = opts.natsUrls;
    } else {
      this.nats = await startNatsServer();
      this.natsUrls = [this.nats.url];
    }
    [this.sim, this.slack] = await Promise.all([startVcsim(opts.vcsim), SlackStandIn.start()]);
    this.nc = await connect({ servers: this.natsUrls, name: "faults-observer", maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    this.js = jetstream(this.nc, { timeout: 10_000 });
    this.jsm = await jetstreamManager(this.nc, { timeout: 10_000 });
    await this.prepareJetStream();
    this.results = new StreamLog(() => this.jsm, Streams.results.name, (r) => r as Result);
    this.deadLetters = new StreamLog(() => this.jsm, Streams.deadLetters.name, (r) => r as never);
    this.observer = await VimClient.connect({ url: this.sim.url, username: this.sim.username, password: this.sim.password, timeoutMs: 30_000 });
    for (const spec of opts.services ?? [{ name: "vcenter-proxy" }, { name: "power" }, { name: "gateway" }]) {
      if (!isBuilt(spec.name)) throw new Error(`services/${spec.name}/dist/main.js is missing: run npm run build:ts`);
      const p = this.procs.add(spec.name, await this.envFor(spec), spec.label ?? spec.name);
      await p.start();
    }
  }

  /**
   * Streams, the command-state bucket and (when asked) consumers with shorter ack waits, made
   * before any service starts so the services find them and leave them as they are.
   */
  private async prepareJetStream(): Promise<void> {
    const replicas = this.opts.replicas ?? 1;
    const log = createLogger("faults", "silent");
    await ensureStreams(this.jsm, ["commands", "results", "audit", "deadLetters", "events", "notices"], log, replicas);
    for (const [key, ms] of Object.entries(this.opts.ackWaitMs ?? {}) as [keyof typeof Consumers, number][]) {
      const def = Consumers[key];
      await this.jsm.consumers.add(def.stream, {
        durable_name: def.durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        filter_subject: def.filter,
        max_deliver: def.maxDeliver,
        ack_wait: ms * 1e6,
        num_replicas: replicas,
      });
    }
    const kvm = new Kvm(this.nc);
    this.stateKv = await kvm.create(Buckets.commandState.name, { ttl: Buckets.commandState.ttlMs, history: 1, replicas });
    if (replicas > 1) {
      for (const b of [Buckets.requests, Buckets.confirmations, Buckets.rateLimits, Buckets.notices]) {
        await kvm.create(b.name, { ttl: b.ttlMs, history: 1, replicas });
      }
    }
  }

  private async envFor(spec: ServiceSpec): Promise<Record<string, string>> {
    const common: Record<string, string> = {
      NATS_URL: this.natsUrls.join(","),
      HEALTH_PORT: "0",
      HEALTH_HOST: "127.0.0.1",
      IAAS_ADMINS: ADMIN,
      IAAS_POLICY: this.policyFile,
      LOG_LEVEL: "info",
    };
    const own: Record<string, string> = {};
    switch (spec.name) {
      case "vcenter-proxy":
        Object.assign(own, { VCENTER_URL: this.sim.url, VCENTER_USERNAME: this.sim.username, VCENTER_PASSWORD: this.sim.password, VCENTER_INSECURE: "true" });
        break;
      case "gateway": {
        const port = await freePort();
        this.gatewayPorts.set(spec.label ?? spec.name, port);
        Object.assign(own, { SLACK_SIGNING_SECRET: SIGNING_SECRET, SLACK_API_URL: this.slack.apiUrl, GATEWAY_PORT: String(port), GATEWAY_HOST: "127.0.0.1" });
        break;
      }
      case "veba-bridge":
        Object.assign(own, { BRIDGE_PORT: "0", BRIDGE_HOST: "127.0.0.1", BRIDGE_TOKEN });
        break;
      default:
        break;
    }
    return { ...common, ...own, ...(this.opts.env?.[spec.name] ?? {}), ...(spec.env ?? {}) };
  }

  svc(label: string): ServiceProcess {
    return this.procs.get(label);
  }

  /** The gateway's Slack endpoint (a fixed port per instance, so it is the same after a restart, like Slack's one URL). */
  gatewayUrl(label = "gateway"): string {
    const port = this.gatewayPorts.get(label);
    if (port === undefined) throw new Error(`no gateway ${label}`);
    return `http://127.0.0.1:${port}/slack/events`;
  }

  /**
   * A signed `/iaas` request, as Slack sends it. `triggerId` makes a retry of the same request
   * (Slack's X-Slack-Retry-Num) carry the same id; a network failure is returned, not thrown.
   */
  async slash(text: string, o: { user?: string; channel?: string; triggerId?: string; responseUrl?: string; gateway?: string; retryNum?: number } = {}): Promise<SlashOutcome> {
    this.slashN += 1;
    const triggerId = o.triggerId ?? `${Date.now()}.${this.slashN}.${randomUUID().slice(0, 8)}`;
    const responseUrl = o.responseUrl ?? this.slack.responseUrl(`f${this.slashN}-${randomUUID().slice(0, 8)}`);
    const id = commandIdOf(TEAM, triggerId);
    // A user per request unless one is named: the gateway's per-user rate limit is not under test here.
    const body = slashCommandBody({ text, team_id: TEAM, user_id: o.user ?? `UF${String(this.slashN).padStart(5, "0")}`, channel_id: o.channel ?? "C0FAULTS", response_url: responseUrl, trigger_id: triggerId });
    const headers = o.retryNum ? { "x-slack-retry-num": String(o.retryNum), "x-slack-retry-reason": "http_timeout" } : undefined;
    this.inflightSlash += 1;
    let http: PostResult;
    try {
      http = await postSigned(this.gatewayUrl(o.gateway), body, { secret: SIGNING_SECRET, ...(headers ? { headers } : {}) });
    } catch (err) {
      return { id, triggerId, responseUrl, error: String((err as Error).message) };
    } finally {
      this.inflightSlash -= 1;
    }
    this.onSlashAnswer?.();
    const named = /`(r-[a-z2-7]+)`/.exec(http.body)?.[1];
    if (named && named !== id) throw new Error(`the gateway named command id ${named}, the test computed ${id}: services/gateway/src/commands/ids.ts changed?`);
    return { id, triggerId, responseUrl, http };
  }

  /** Publishes a command straight to JetStream, as an operator with the NATS CLI would. */
  async publishCommand(cmd: Command): Promise<void> {
    const action = "action" in cmd ? cmd.action : "";
    await this.js.publish(Subjects.command(cmd.area, action), JSON.stringify(cmd), { msgID: cmd.id });
  }

  /** Final results per command id, read from IAAS_RESULTS. */
  async finals(): Promise<Map<string, FinalResult[]>> {
    await this.results.read();
    const out = new Map<string, FinalResult[]>();
    for (const { data } of this.results.items) {
      if (data.status === "progress") continue;
      const list = out.get(data.id) ?? [];
      list.push(data);
      out.set(data.id, list);
    }
    return out;
  }

  /** Waits until every id has a final result; returns them. */
  async waitFinals(ids: readonly string[], timeoutMs: number, what = "final results"): Promise<Map<string, FinalResult[]>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let f: Map<string, FinalResult[]> | undefined;
      try {
        f = await this.finals();
      } catch {
        // NATS may be restarting: read again.
      }
      const missing = f ? ids.filter((id) => !f.has(id)) : [...ids];
      if (f && missing.length === 0) return f;
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${missing.length} of ${ids.length} missing (${missing.slice(0, 5).join(", ")})\n${this.procs.tails(15)}`);
      }
      await sleep(200);
    }
  }

  /** Command-state record (the runtime's KV), for "is it in flight yet". */
  async stateOf(id: string): Promise<string | undefined> {
    return (await this.stateRecordOf(id))?.status;
  }

  /** The whole record: `started` carries the delivery that wrote it. */
  async stateRecordOf(id: string): Promise<{ status: string; delivery?: number } | undefined> {
    const e = await this.stateKv.get(id);
    if (!e || e.operation !== "PUT" || e.length === 0) return undefined;
    return e.json() as { status: string; delivery?: number };
  }

  /** Names, power states, CPU and memory of every VM and template, sorted by name. */
  async vmSnapshot(): Promise<VmState[]> {
    const vms = await listVmSummaries(this.observer);
    return vms
      .map((v) => ({ name: v.name, powerState: v.powerState, numCpu: v.numCPU ?? 0, memoryMB: v.memoryMB ?? 0, template: v.template }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async powerStateOf(name: string): Promise<string | undefined> {
    return (await this.vmSnapshot()).find((v) => v.name === name)?.powerState;
  }

  /**
   * vCenter events of these types, counted per VM name. QueryEvents with maxCount 1000 (vcsim
   * keeps the newest 1000 events of all kinds; `ringFull` says whether older ones may be lost).
   */
  async eventCounts(types: readonly string[]): Promise<{ counts: Map<string, Record<string, number>>; ringFull: boolean }> {
    const em = this.observer.eventManager;
    const all = await em.queryEvents({ maxCount: 1000 });
    const evs: VimEvent[] = await em.queryEvents({ eventTypeId: [...types], maxCount: 1000 });
    const counts = new Map<string, Record<string, number>>();
    const seen = new Set<number>();
    for (const e of evs) {
      if (seen.has(e.key)) continue;
      seen.add(e.key);
      const vm = e.vm?.name ?? "?";
      const c = counts.get(vm) ?? {};
      c[e._type] = (c[e._type] ?? 0) + 1;
      counts.set(vm, c);
    }
    return { counts, ringFull: all.length >= 1000 };
  }

  /** Creates powered-off VMs straight over SOAP (test fixtures, not through the product). */
  async createVms(names: readonly string[]): Promise<void> {
    const c = this.observer;
    const folder = await c.searchIndex.findByInventoryPath("/DC0/vm");
    const pool = await c.searchIndex.findByInventoryPath("/DC0/host/DC0_C0/Resources");
    if (!folder || !pool) throw new Error("vcsim inventory: /DC0/vm or the DC0_C0 pool is missing");
    for (const name of names) {
      const task = await c.folder(folder).createVM({ name, guestId: "otherGuest", files: { vmPathName: "[LocalDS_0]" }, numCPUs: 1, memoryMB: 128 }, pool);
      await task.wait({ timeoutMs: 30_000 });
    }
  }

  async findVm(name: string): Promise<MoRef | undefined> {
    return (await listVmSummaries(this.observer)).find((v) => v.name === name)?.ref;
  }

  /**
   * TerminateSession, from the observer's session, of every other session (the proxy's): what an
   * administrator does in vCenter's session list. Returns the keys terminated.
   */
  async terminateOtherSessions(): Promise<string[]> {
    const c = this.observer;
    const sm = c.serviceContent.sessionManager;
    if (!sm) throw new Error("no SessionManager in the ServiceContent");
    const [r] = await c.retrieve([sm], ["sessionList"]);
    const raw = r?.props.sessionList;
    const list = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]) as { key?: string }[];
    const mine = c.session?.key;
    const victims = list.map((s) => s.key).filter((k): k is string => typeof k === "string" && k !== mine);
    if (victims.length) await c.sessionManager.terminateSession(victims);
    return victims;
  }

  /** How many instances of a micro service answer `$SRV.PING.<name>` within `waitMs`. */
  async ping(name: string, waitMs = 1000): Promise<number> {
    let n = 0;
    try {
      const it = await this.nc.requestMany(`$SRV.PING.${name}`, undefined, { strategy: "timer", maxWait: waitMs } as never);
      for await (const m of it) {
        if (m.data.length) n += 1;
      }
    } catch (err) {
      // No instance at all: NATS answers "no responders".
      if (!/no responders/i.test(String(err))) throw err;
    }
    return n;
  }

  /** Final posts (not progress) the Slack stand-in received on a response_url. */
  finalPosts(responseUrl: string): string[] {
    return this.slack
      .postsTo(responseUrl)
      .map((c) => String(c.body.text ?? ""))
      .filter((t) => !t.startsWith(":hourglass"));
  }

  crashes(): string[] {
    return this.procs.crashes();
  }

  async dispose(): Promise<void> {
    await this.procs.dispose().catch(() => undefined);
    await this.nc?.close().catch(() => undefined);
    await this.observer?.logout().catch(() => undefined);
    await this.sim?.stop().catch(() => undefined);
    await this.slack?.close().catch(() => undefined);
    await this.nats?.dispose().catch(() => undefined);
  }
}

/**
 * Each run keeps its services' logs in /tmp/iaas-faults-<scenario>-* for a post-mortem; the ones
 * older than a day are removed so repeated CI runs do not fill /tmp.
 */
async function pruneOldLogs(): Promise<void> {
  const dir = tmpdir();
  const old = Date.now() - 24 * 60 * 60 * 1000;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.startsWith("iaas-faults-")) continue;
    const path = join(dir, name);
    const st = await stat(path).catch(() => undefined);
    if (st?.isDirectory() && st.mtimeMs < old) await rm(path, { recursive: true, force: true }).catch(() => undefined);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls until `probe` is truthy; throws `what` (with the services' last log lines) after `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number, sys?: FaultSystem): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    // A crash explains a wait better than a timeout does (unless the scenario restarts crashed services).
    const crashes = sys?.crashes() ?? [];
    if (crashes.length && !sys?.procs.all.some((p) => p.supervise)) throw new Error(`while waiting for ${what}: ${crashes.join("; ")}\n${sys!.procs.tails(15)}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${String(lastErr)})` : ""}${sys ? `\n${sys.procs.tails(15)}` : ""}`);
    await sleep(50);
  }
}
