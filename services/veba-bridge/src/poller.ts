import { z } from "zod";
import {
  Headers,
  parseVcenterSources,
  IaasError,
  ServiceNames,
  ProxyEndpoints,
  Streams,
  VsphereEventSchema,
  eventMsgId,
  eventSubject,
  formatIssues,
  type VimEvent,
  type VsphereEvent,
} from "@iaas/contracts";
import { bridgeMetrics } from "./metrics.js";
import { Counter, Gauge, encodeJson, inProduceSpan, makeHeaders, requestJson, type Jet, type KV, type Logger, type Metrics, type NatsConnection } from "@iaas/runtime";

/**
 * The built-in vCenter event poller, reading vCenter events through vcenter-proxy, for sites
 * without VEBA. It publishes each event exactly as the bridge does, so
 * remediation cannot tell the two apart and an event seen by both is stored once:
 * `vsphere.event.<Class>`, a `VsphereEvent` with `via: "poller"`, `id` = the key, `source` = the
 * vCenter URL VEBA would send, Nats-Msg-Id `eventMsgId(event)`, `data` in VEBA's PascalCase.
 *
 * The checkpoint (the last key published) lives in the `iaas_event_poller` bucket, one entry per
 * source, and only moves past an event once JetStream has acked it: a failed publish leaves it
 * where it was, and the next poll sends that event again (a duplicate is dropped by the stream).
 * A first start begins at vCenter's newest key: history is not replayed unless POLLER_START says so.
 */

const bool = z.enum(["true", "false", "1", "0", ""]).default("false").transform((v) => v === "true" || v === "1");

/** The poller's variables, read beside the bridge's (README.md). */
export const PollerEnvSchema = z
  .object({
    POLLER_ENABLED: bool,
    POLL_INTERVAL_MS: z.coerce.number().int().min(100).max(3_600_000).default(10_000),
    /** The `source` of the events: the vCenter URL as VEBA sends it (`https://vcenter.example.com/sdk`). */
    POLLER_SOURCE: z.string().optional(),
    /** Used for POLLER_SOURCE when that is unset (credentials are stripped). */
    VCENTER_URL: z.string().optional(),
    /** Comma-separated vSphere event types to read (base types such as `AlarmEvent` match subtypes); all when unset. */
    POLLER_EVENT_TYPES: z.string().optional(),
    /** Where a first start (no checkpoint yet) begins: `latest` (default), `oldest`, or a key. */
    POLLER_START: z.string().regex(/^(latest|oldest|[0-9]{1,15})$/, "must be latest, oldest or an event key").default("latest"),
    /** Events per request to vcenter-proxy. */
    POLLER_BATCH: z.coerce.number().int().min(1).max(1000).default(100),
    /** Deadline of one events-read request. */
    POLLER_TIMEOUT_MS: z.coerce.number().int().min(1000).max(300_000).default(30_000),
    /** `id=source` pairs: one poller per vCenter, each publishing with its source (unset: one, the default vCenter). */
    VCENTER_SOURCES: z.string().optional(),
  })
  .superRefine((env, ctx) => {
    if (!env.POLLER_ENABLED) return;
    const src = env.POLLER_SOURCE || env.VCENTER_URL;
    if (!src) {
      ctx.addIssue({ code: "custom", path: ["POLLER_SOURCE"], message: "is required when POLLER_ENABLED=true (or set VCENTER_URL): the vCenter URL events are published as coming from" });
      return;
    }
    try {
      parseVcenterSources(env.VCENTER_SOURCES);
    } catch (err) {
      ctx.addIssue({ code: "custom", path: ["VCENTER_SOURCES"], message: (err as Error).message });
    }
    if (!URL.canParse(src)) ctx.addIssue({ code: "custom", path: [env.POLLER_SOURCE ? "POLLER_SOURCE" : "VCENTER_URL"], message: "must be a URL such as https://vcenter.example.com/sdk" });
    for (const t of (env.POLLER_EVENT_TYPES ?? "").split(",").map((s) => s.trim()).filter(Boolean)) {
      if (!/^[A-Za-z]{1,80}$/.test(t)) ctx.addIssue({ code: "custom", path: ["POLLER_EVENT_TYPES"], message: `${JSON.stringify(t.slice(0, 40))} is not a vSphere event type name` });
    }
  });
export type PollerEnv = z.infer<typeof PollerEnvSchema>;

export interface PollerConfig {
  /** The CloudEvent-style source, e.g. `https://vcenter.example.com/sdk`. */
  source: string;
  /** The vCenter read (a vcenter-proxy VCENTERS id); the default one when unset. */
  vcenter?: string | undefined;
  intervalMs: number;
  batch: number;
  eventTypes?: string[] | undefined;
  start: "latest" | "oldest" | number;
  requestTimeoutMs: number;
  publishTimeoutMs: number;
}

/** The URL without credentials, query or fragment: what VEBA puts in `source`. */
export function sourceOf(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname}`;
}

export function pollerConfigFromEnv(env: PollerEnv, publishTimeoutMs: number): PollerConfig {
  const types = (env.POLLER_EVENT_TYPES ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  return {
    source: sourceOf((env.POLLER_SOURCE || env.VCENTER_URL)!),
    intervalMs: env.POLL_INTERVAL_MS,
    batch: env.POLLER_BATCH,
    eventTypes: types.length ? types : undefined,
    start: env.POLLER_START === "latest" || env.POLLER_START === "oldest" ? env.POLLER_START : Number(env.POLLER_START),
    requestTimeoutMs: env.POLLER_TIMEOUT_MS,
    publishTimeoutMs,
  };
}

/**
 * One poller config per vCenter: with VCENTER_SOURCES, one per `id=source` pair (that vCenter read,
 * events published with that source); without, the single default-vCenter poller.
 */
export function pollerConfigsFromEnv(env: PollerEnv, publishTimeoutMs: number): PollerConfig[] {
  const one = pollerConfigFromEnv(env, publishTimeoutMs);
  const sources = parseVcenterSources(env.VCENTER_SOURCES);
  if (sources.length === 0) return [one];
  return sources.map((s) => ({ ...one, source: s.source, ...(s.id === "default" ? {} : { vcenter: s.id }) }));
}

export interface PollerDeps {
  nc: NatsConnection;
  jet: Jet;
  /** The `iaas_event_poller` bucket. */
  checkpoints: KV;
  log: Logger;
  metrics: Metrics;
  config: PollerConfig;
}

export interface PollResult {
  /** Events stored by JetStream in this poll (duplicates included). */
  published: number;
  /** The checkpoint after the poll: the last key published. */
  checkpoint: number;
}

export interface Poller {
  start(): void;
  /** Stops polling; resolves once a poll in progress has finished. */
  stop(): Promise<void>;
  /** One poll now (what the timer runs). */
  pollOnce(): Promise<PollResult>;
}

const CheckpointSchema = z.strictObject({ source: z.string(), afterKey: z.number().int().min(-1), at: z.string() });

/** The same JSON with every object key's first letter upper case, as VEBA's Go encoding writes govmomi types. */
export function pascalize(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(pascalize);
  if (v && typeof v === "object" && !(v instanceof Date)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k.charAt(0).toUpperCase() + k.slice(1), pascalize(x)]));
  }
  return v;
}

/** The message for one vCenter event, as the bridge would publish it had VEBA sent it; undefined when it cannot be one. */
export function toVsphereEvent(e: VimEvent, source: string, receivedAt: Date): { message: VsphereEvent; subject: string; msgId: string } | { error: string } {
  // VEBA names EventEx / ExtendedEvent by their type id (com.vmware.vc.HA....); so does the poller.
  const typeId = e.data.eventTypeId;
  const eventClass = (e.eventClass === "EventEx" || e.eventClass === "ExtendedEvent") && typeof typeId === "string" && typeId ? typeId : e.eventClass;
  const created = Date.parse(e.createdTime);
  const parsed = VsphereEventSchema.safeParse({
    id: String(e.key),
    source,
    eventClass,
    key: e.key,
    time: Number.isNaN(created) ? receivedAt.toISOString() : new Date(created).toISOString(),
    receivedAt: receivedAt.toISOString(),
    via: "poller",
    data: pascalize(e.data),
  });
  if (!parsed.success) return { error: formatIssues(parsed.error) };
  return { message: parsed.data, subject: eventSubject(eventClass), msgId: eventMsgId(parsed.data) };
}

function pollerMetrics(metrics: Metrics) {
  const { registry } = metrics;
  const existing = <T>(name: string) => registry.getSingleMetric(name) as T | undefined;
  return {
    events:
      existing<Counter<"outcome" | "vcenter">>("iaas_poller_events_total") ??
      new Counter({ name: "iaas_poller_events_total", help: "vCenter events read by the poller, by vCenter and outcome (published, duplicate, skipped: not a valid event message).", labelNames: ["outcome", "vcenter"] as const, registers: [registry] }),
    polls:
      existing<Counter<"outcome" | "vcenter">>("iaas_poller_polls_total") ??
      new Counter({ name: "iaas_poller_polls_total", help: "Polls of vcenter-proxy events-read, by vCenter and outcome (ok, failed).", labelNames: ["outcome", "vcenter"] as const, registers: [registry] }),
    checkpoint:
      existing<Gauge<"vcenter">>("iaas_poller_checkpoint_key") ??
      new Gauge({ name: "iaas_poller_checkpoint_key", help: "The last vCenter event key the poller published, by vCenter.", labelNames: ["vcenter"] as const, registers: [registry] }),
  };
}

/** The poller, not started. */
export function buildPoller(deps: PollerDeps): Poller {
  const { config, log, checkpoints } = deps;
  const m = pollerMetrics(deps.metrics);
  // The metrics' label: a VCENTERS id, or `default`.
  const vcenter = config.vcenter ?? "default";
  const { eventFrom } = bridgeMetrics(deps.metrics);
  const key = `source.${Buffer.from(config.source, "utf8").toString("base64url")}`;
  const types = config.eventTypes?.length ? { eventTypes: config.eventTypes } : {};
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopping = false;

  const read = (afterKey: number, maxCount: number) =>
    requestJson(deps.nc, ProxyEndpoints.eventsRead, { ...(config.vcenter ? { vcenter: config.vcenter } : {}), ...(afterKey >= 0 ? { afterKey } : {}), maxCount, ...types }, { timeoutMs: config.requestTimeoutMs });

  async function load(): Promise<{ afterKey: number; revision: number } | undefined> {
    const e = await checkpoints.get(key);
    if (!e || e.operation !== "PUT" || e.length === 0) return undefined;
    const r = CheckpointSchema.safeParse((() => {
      try {
        return e.json();
      } catch {
        return undefined;
      }
    })());
    if (!r.success) throw new IaasError("IAAS_INTERNAL", `the poller checkpoint ${key} is unreadable: ${formatIssues(r.error)}; delete it to start again at the newest event`);
    return { afterKey: r.data.afterKey, revision: e.revision };
  }

  /**
   * Stores the checkpoint with compare-and-set: two pollers on one source (replicas) never move it
   * backwards. Returns the checkpoint now in the bucket and its revision.
   */
  async function save(afterKey: number, revision: number | undefined): Promise<{ afterKey: number; revision: number }> {
    const value = JSON.stringify({ source: config.source, afterKey, at: new Date().toISOString() });
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const rev = revision === undefined ? await checkpoints.create(key, value) : await checkpoints.update(key, value, revision);
        m.checkpoint.set({ vcenter }, afterKey);
        return { afterKey, revision: rev };
      } catch (err) {
        const cur = await load();
        if (!cur) throw err;
        // Another poller got further: keep its checkpoint.
        if (cur.afterKey >= afterKey) return cur;
        revision = cur.revision;
      }
    }
    throw new IaasError("IAAS_UNAVAILABLE", "the poller checkpoint is contended; next poll");
  }

  async function pollOnce(): Promise<PollResult> {
    let cp = await load();
    if (!cp) {
      if (config.start === "latest") {
        // Begin at vCenter's newest event: what happened before the poller existed is not replayed.
        const r = await read(-1, 1);
        cp = await save(r.latestKey ?? 0, undefined);
        log.info({ source: config.source, afterKey: cp.afterKey }, "poller starts at vCenter's newest event");
        return { published: 0, checkpoint: cp.afterKey };
      }
      cp = await save(config.start === "oldest" ? -1 : config.start, undefined);
      log.info({ source: config.source, afterKey: cp.afterKey }, "poller starts at the configured key");
    }
    let published = 0;
    for (;;) {
      const r = await read(cp.afterKey, config.batch);
      let done = cp.afterKey;
      let failure: unknown;
      for (const e of r.events) {
        if (e.key <= done) continue;
        const out = toVsphereEvent(e, config.source, new Date());
        if ("error" in out) {
          // Never publishable, so never retried: counted and logged, and the checkpoint moves on.
          log.error({ key: e.key, eventClass: e.eventClass, reason: out.error }, "skipping a vCenter event that is not a valid event message");
          m.events.inc({ outcome: "skipped", vcenter });
          done = e.key;
          continue;
        }
        try {
          const payload = encodeJson(out.message);
          // Traced, each event is a trace of its own from here: its decisions and their vCenter calls follow it.
          const ack = await inProduceSpan(ServiceNames.vebaBridge, out.subject, { "messaging.message.id": out.msgId, "messaging.message.body.size": payload.length }, (tp) =>
            deps.jet.js.publish(out.subject, payload, { msgID: out.msgId, timeout: config.publishTimeoutMs, expect: { streamName: Streams.events.name }, ...(tp ? { headers: makeHeaders({ [Headers.traceparent]: tp }) } : {}) }),
          );
          m.events.inc({ outcome: ack.duplicate ? "duplicate" : "published", vcenter });
          eventFrom(config.source);
          published += 1;
          done = e.key;
        } catch (err) {
          failure = err;
          break;
        }
      }
      if (done !== cp.afterKey) cp = await save(done, cp.revision);
      if (failure !== undefined) {
        throw new IaasError("IAAS_UNAVAILABLE", `JetStream did not store the event after key ${done}; the next poll resumes there`, { cause: failure });
      }
      if (r.events.length < config.batch || stopping) return { published, checkpoint: cp.afterKey };
    }
  }

  function schedule(delay: number): void {
    if (stopping) return;
    timer = setTimeout(() => {
      const p = pollOnce().then(
        (r) => {
          m.polls.inc({ outcome: "ok", vcenter });
          if (r.published) log.debug({ published: r.published, checkpoint: r.checkpoint }, "polled vCenter events");
        },
        (err: unknown) => {
          m.polls.inc({ outcome: "failed", vcenter });
          const ie = IaasError.from(err);
          // vcenter-proxy or JetStream away for a moment is expected (start-up, restarts): no stack for those.
          if (ie.code === "IAAS_INTERNAL") log.error({ err }, `polling vCenter events failed: ${ie.message}`);
          else log.warn({ code: ie.code }, `polling vCenter events failed: ${ie.message}; next poll in ${config.intervalMs} ms`);
        },
      );
      running = p;
      void p.finally(() => schedule(config.intervalMs));
    }, delay);
  }

  return {
    start() {
      stopping = false;
      log.info({ source: config.source, intervalMs: config.intervalMs, eventTypes: config.eventTypes ?? "all" }, "event poller started");
      schedule(0);
    },
    async stop() {
      stopping = true;
      clearTimeout(timer);
      await running;
    },
    pollOnce,
  };
}
