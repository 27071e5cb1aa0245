import type { JsMsg } from "@nats-io/jetstream";
import {
  Consumers,
  ServiceNames,
  IaasError,
  ResultSchema,
  VsphereEventSchema,
  eventMsgId,
  formatIssues,
  normalizeVsphereEvent,
  quote,
  vcenterOfSource,
  type RemediationPause,
  type NormalizedVsphereEvent,
  type RemediationRule,
  type VcenterSource,
  type VsphereEvent,
} from "@iaas/contracts";
import type { Policy } from "@iaas/policy";
import { backoffMs, consumeLoop, inConsumeSpan, decodeJson, openBucket, type ConsumeLoop, type Jet, type KV, type Logger, type Metrics, type NatsConnection } from "@iaas/runtime";
import { alarmText, errText, type AlarmTrigger, type RuleContext } from "./context.js";
import { evacuateDatastore, moveAlarmedVm } from "./evacuation.js";
import { createLookahead, type LaterStatus } from "./lookahead.js";
import { pauseInForce } from "./pause.js";
import { remediationMetrics } from "./metrics.js";
import { createReporter, recordBrakeSummary, reporterFor } from "./report.js";
import { applyPending, scaleUp } from "./scaling.js";
import { RemediationState } from "./state.js";
import { vcenterOverNats, type VcenterPort } from "./vcenter.js";

export const VERSION = "0.1.0";

/** The lookahead's default cap: alarm events held in memory (a few MB). */
export const LOOKAHEAD_ENTRIES = 50_000;

/**
 * Events handled at once, each waiting for its round trips (NATS, vcenter-proxy): those of different
 * VMs; the events of one VM take turns in stream order.
 */
export const EVENT_CONCURRENCY = 64;

/** The objects an alarm can be acknowledged on through vcenter-proxy. */
const ACKNOWLEDGEABLE = new Set(["VirtualMachine", "Datastore", "HostSystem", "ClusterComputeResource"]);

export interface RemediationConfig {
  /** Deadline of a read through vcenter-proxy (VM info, datastore lists). */
  lookupTimeoutMs: number;
  /** Deadline of a vCenter task (reconfigure, relocate, power). */
  taskTimeoutMs: number;
  /** How often deferred changes are checked against their VM's power state (besides power-off events). */
  pendingRecheckMs: number;
  /** How many alarm events the lookahead holds in memory at most (lookahead.ts); 50 000 when unset. */
  lookaheadEntries?: number;
  /**
   * VCENTER_SOURCES: the vCenter of each event by its source. Empty: every event is the default
   * vCenter's (one vCenter); else an event whose source matches none is refused (`unknown-vcenter`).
   */
  vcenterSources?: readonly VcenterSource[];
}

export interface RemediationDeps {
  nc: NatsConnection;
  jet: Jet;
  /** The `iaas_remediation` bucket. */
  state: KV;
  /** The same policy every service loads (IAAS_POLICY or the default); its `remediation` section rules here. */
  policy: Policy;
  log: Logger;
  metrics: Metrics;
  config: RemediationConfig;
  /** The `iaas_remediation_control` bucket (an admin's pause), read only; opened by start() when unset. */
  control?: KV;
  /** The clock of cooldowns and the brake; the real one when unset. */
  now?: () => number;
  /** vCenter access (the default vCenter); through vcenter-proxy over NATS when unset. */
  vcenter?: VcenterPort;
}

export interface Remediation {
  /**
   * Starts consuming VSPHERE_EVENTS, the command results of IAAS_RESULTS (our own power-offs) and
   * re-checking deferred changes (the process registers the micro service: runService).
   */
  start(): Promise<void>;
  /** Stops fetching and lets the event in hand finish. */
  stop(): Promise<void>;
  /** Applies every deferred change whose VM is powered off now (what the periodic re-check runs). */
  recheckPending(): Promise<void>;
}

/** What an event asks of remediation, if anything. */
type Work = { type: "alarm"; rule: RemediationRule; alarm: string } | { type: "power-off"; moref: string | undefined; name: string | undefined };

/** VM power-off events after which a deferred change can be applied (vCenter and the simulator emit these). */
const POWER_OFF_EVENTS: ReadonlySet<string> = new Set(["VmPoweredOffEvent", "VmGuestShutdownEvent"]);

/**
 * The remediation service, not started. It reads every event of VSPHERE_EVENTS on its durable,
 * those of one VM in stream order (different VMs side by side: inTurn), and acts on the alarms the policy names:
 * - a red CPU or memory alarm on a VM: one vCPU or 2 GB more (scaling.ts);
 * - a red datastore usage alarm: VMs moved off the datastore; a red VM storage alarm: that VM moved (evacuation.ts);
 * - a VM's power-off: changes deferred for it (no hot-add) are applied; the power-off is vCenter's
 *   event, or a command result on its own durable `remediation-results` saying the VM is now off.
 * Every decision, to act or not, is audited and noticed (report.ts). An event is acked once its
 * decisions are recorded; a redelivery of an event already handled is dropped (the state bucket
 * remembers it), and one interrupted half-way resumes its own change (cooldowns name their event).
 */
export function buildRemediation(deps: RemediationDeps): Remediation {
  const { jet, log, policy } = deps;
  const now = deps.now ?? Date.now;
  const m = remediationMetrics(deps.metrics);
  const state = new RemediationState(deps.state, log);
  const timeouts = { lookupTimeoutMs: deps.config.lookupTimeoutMs, taskTimeoutMs: deps.config.taskTimeoutMs };
  const vc = deps.vcenter ?? vcenterOverNats(deps.nc, timeouts);
  const sources = deps.config.vcenterSources ?? [];
  // One port per vCenter, made on first use; the default one is `vc`.
  const ports = new Map<string, VcenterPort>([["default", vc]]);
  const portOf = (id: string): VcenterPort => {
    let p = ports.get(id);
    if (!p) ports.set(id, (p = vcenterOverNats(deps.nc, timeouts, id)));
    return p;
  };
  const report = createReporter({ jet, log, metrics: m, now });
  const lookahead = createLookahead(jet, { maxEntries: deps.config.lookaheadEntries ?? LOOKAHEAD_ENTRIES });
  const def = Consumers.remediation;
  const resultsDef = Consumers.remediationResults;

  let control = deps.control;
  let loop: ConsumeLoop | undefined;
  let resultLoop: ConsumeLoop | undefined;
  let timer: NodeJS.Timeout | undefined;
  let summaries: NodeJS.Timeout | undefined;
  let summarizing: Promise<void> | undefined;
  let stopping = false;
  // Turns: the events of one VM one after another, in stream order; those of different VMs side by
  // side (up to EVENT_CONCURRENCY). Work without a VM key (a datastore, a VM named but not by moref,
  // the re-check, a command result) runs alone: it waits for everything before it, and everything
  // after it waits for it. So a deferred change is never applied by two at once.
  const noop = () => undefined;
  let barrier: Promise<unknown> = Promise.resolve();
  const running = new Set<Promise<unknown>>();
  const tails = new Map<string, Promise<unknown>>();
  const inTurn = <T>(key: string | undefined, fn: () => Promise<T>): Promise<T> => {
    let run: Promise<T>;
    if (key === undefined) {
      run = Promise.all([barrier, ...running]).then(fn);
      barrier = run.then(noop, noop);
    } else {
      run = Promise.all([barrier, tails.get(key)]).then(fn);
      const tail = run.then(noop, noop);
      tails.set(key, tail);
      void tail.then(() => {
        if (tails.get(key) === tail) tails.delete(key);
      });
    }
    const settled = run.then(noop, noop);
    running.add(settled);
    void settled.then(() => running.delete(settled));
    return run;
  };
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => inTurn(undefined, fn);

  /** Whose turn an event takes: its VM's (a CPU or memory alarm, a power-off, named by moref), or none (alone). */
  function turnOf(msg: JsMsg): string | undefined {
    let ev: VsphereEvent;
    try {
      const parsed = VsphereEventSchema.safeParse(decodeJson(msg.data));
      if (!parsed.success) return undefined;
      ev = parsed.data;
    } catch {
      return undefined;
    }
    const n = normalizeVsphereEvent(ev);
    const work = classify(ev, n);
    if (!work) return `ignored`;
    const moref = work.type === "power-off" ? work.moref : (work.rule === "cpu" || work.rule === "memory") && n.entity?.type === "VirtualMachine" ? n.entity.value : undefined;
    // By vCenter, as the state is: sources of one vCenter (VEBA's, the poller's) share a VM's turn.
    return moref ? `vm\u0000${vcenterOfSource(sources, ev.source) ?? ev.source}\u0000${moref}` : undefined;
  }

  const ctxFor = (elog: Logger, vcenter = "default"): RuleContext => ({ policy, vc: portOf(vcenter), state: state.forVcenter(vcenter), report: reporterFor(report, vcenter), now, log: elog });

  function classify(ev: VsphereEvent, n: NormalizedVsphereEvent): Work | undefined {
    if (ev.eventClass === "AlarmStatusChangedEvent") {
      const kind = n.alarmName ? policy.alarmKind(n.alarmName) : undefined;
      // Only the turn to red is a trigger: green, yellow and gray transitions ask nothing.
      if (!kind || n.to !== "red") return undefined;
      return { type: "alarm", rule: kind, alarm: n.alarmName! };
    }
    if (POWER_OFF_EVENTS.has(ev.eventClass) && n.vm) return { type: "power-off", moref: n.vm.value, name: n.vm.name };
    return undefined;
  }

  /**
   * The reads an alarm starts with, started together with its handled mark (each its own round
   * trip, none depending on another): the pause in force and the lookahead's newer status. Read
   * whether or not the alarm gets that far; an unused read changes nothing.
   */
  type Reads = { pause: Promise<RemediationPause | undefined>; newer: Promise<LaterStatus | undefined> };
  function startReads(msg: JsMsg, ev: VsphereEvent, n: NormalizedVsphereEvent, elog: Logger, vcenter: string): Reads {
    const pause = control ? pauseInForce(control, now(), elog, vcenter) : Promise.resolve(undefined);
    // What was stored when the event was delivered (the stream holds only events, all on our durable's filter):
    // the scan reads that far, not on to a storm's moving end.
    const newer = lookahead.newerAlarmStatus(msg.seq, ev, n, msg.seq + msg.info.pending);
    // Awaited later, or never (a repeat): a failure is not unhandled meanwhile.
    pause.catch(() => undefined);
    newer.catch(() => undefined);
    return { pause, newer };
  }

  async function onAlarm(reads: Reads, ev: VsphereEvent, n: NormalizedVsphereEvent, work: Extract<Work, { type: "alarm" }>, eventId: string, elog: Logger, vcenter: string): Promise<void> {
    const ctx = ctxFor(elog, vcenter);
    const s = policy.remediation;
    const entity = n.entity;
    const about = entity?.value ?? entity?.name ?? eventId;
    const base = { rule: work.rule, cause: { id: eventId, alarm: work.alarm }, about, dryRun: s.dryRun, ...(entity?.type === "Datastore" ? { datastore: entity.name } : { vm: entity?.name }) } as const;
    if (!entity?.name) {
      await ctx.report.record({ ...base, decision: "skipped", reason: "wrong-entity", text: `Not acting on ${alarmText(work)}: the event does not name the object it fired on.` });
      return;
    }
    const t: AlarmTrigger = { rule: work.rule, eventId, alarm: work.alarm, entity: { ...entity, name: entity.name } };
    const on = `${entity.type === "Datastore" ? "datastore" : entity.type === "VirtualMachine" ? "VM" : entity.type} ${quote(entity.name)}`;
    if (!s.enabled) {
      await ctx.report.record({ ...base, decision: "skipped", reason: "disabled", text: `Not acting on ${alarmText(t)} on ${on}: remediation is turned off (remediation.enabled: false).` });
      return;
    }
    const pause = await reads.pause;
    if (pause) {
      // Audited, not noticed: a maintenance window can raise many alarms; `/iaas remediation status` lists them.
      await ctx.report.record({
        ...base,
        decision: "skipped",
        reason: "paused",
        notify: false,
        text: `Not acting on ${alarmText(t)} on ${on}: remediation is paused${pause.vcenter ? ` in vCenter ${quote(pause.vcenter)}` : ""} until ${pause.until}${pause.reason ? ` (${quote(pause.reason)})` : ""}.`,
      });
      return;
    }
    const newer = await reads.newer;
    if (newer) {
      const cleared = newer.to !== "red";
      await ctx.report.record({
        ...base,
        decision: "skipped",
        reason: cleared ? "cleared" : "superseded",
        // A newer red alarm gets its own decision and notice; this one is only audited.
        notify: cleared,
        text: cleared
          ? `Not acting on ${alarmText(t)} on ${on}: it has already turned ${newer.to} again.`
          : `Not acting on this red ${alarmText(t)} on ${on}: a newer one is queued and is handled on its own.`,
      });
      return;
    }
    // Whether the rule changed something for this alarm (not a dry run): then vCenter is told it is handled.
    let acted = false;
    const ruleCtx: RuleContext = {
      ...ctx,
      report: {
        record: (d) => {
          if (d.decision === "acted" && !d.dryRun && d.cause.id === eventId) acted = true;
          return ctx.report.record(d);
        },
      },
    };
    switch (work.rule) {
      case "cpu":
      case "memory":
        await scaleUp(ruleCtx, t, work.rule);
        break;
      case "datastore":
        await evacuateDatastore(ruleCtx, t);
        break;
      case "vmStorage":
        await moveAlarmedVm(ruleCtx, t);
        break;
    }
    if (acted) await acknowledgeAlarm(n, elog, portOf(vcenter));
  }

  /**
   * Acknowledges the alarm in vCenter, where it can: best effort, after the change is made and
   * recorded (a failure is logged; the event is not tried again for it, and a redelivered event
   * acknowledges again, which changes nothing).
   */
  async function acknowledgeAlarm(n: NormalizedVsphereEvent, elog: Logger, port: VcenterPort): Promise<void> {
    const alarm = n.alarm?.value;
    const entity = n.entity;
    if (!alarm || !entity?.value || !ACKNOWLEDGEABLE.has(entity.type)) return;
    try {
      const r = await port.acknowledgeAlarm(alarm, { type: entity.type as "VirtualMachine", value: entity.value });
      if (r.unsupported) elog.debug({ alarm }, "vCenter has no AlarmManager that acknowledges alarms: skipped");
      else elog.info({ alarm, entity: entity.value }, "alarm acknowledged in vCenter");
    } catch (err) {
      elog.warn({ err: IaasError.from(err), alarm }, "could not acknowledge the alarm in vCenter; the change stands");
    }
  }

  async function onPowerOff(work: Extract<Work, { type: "power-off" }>, elog: Logger, vcenter = "default"): Promise<void> {
    if (!policy.remediation.enabled) return;
    const vstate = state.forVcenter(vcenter);
    let items = work.moref ? await vstate.pendingOf(work.moref) : [];
    if (!work.moref && work.name) items = [...(await state.allPending()).values()].find((ps) => ps[0]?.vm === work.name && (ps[0]?.vcenter ?? "default") === vcenter) ?? [];
    if (items.length === 0) return;
    elog.info({ vm: work.name, pending: items.length }, "VM powered off with changes waiting");
    await applyPending(ctxFor(elog, vcenter), items, work.name);
  }

  async function handle(msg: JsMsg): Promise<void> {
    const delivery = msg.info.deliveryCount;
    let ev: VsphereEvent;
    try {
      const parsed = VsphereEventSchema.safeParse(decodeJson(msg.data));
      if (!parsed.success) throw new IaasError("IAAS_BAD_REQUEST", `not a vsphere.event message: ${formatIssues(parsed.error)}`);
      ev = parsed.data;
    } catch (err) {
      log.warn({ subject: msg.subject, seq: msg.seq, err: IaasError.from(err, "IAAS_BAD_REQUEST") }, "dropping a malformed event message");
      m.events.inc({ outcome: "poison" });
      // No reason text: nats-server 2.9 ignores "+TERM <reason>".
      msg.term();
      return;
    }
    const n = normalizeVsphereEvent(ev);
    const work = classify(ev, n);
    if (!work) {
      msg.ack();
      m.events.inc({ outcome: "ignored" });
      return;
    }
    const eventId = eventMsgId(ev);
    const vcenter = vcenterOfSource(sources, ev.source);
    const elog = log.child({ event: eventId, eventClass: ev.eventClass, delivery, ...(vcenter && vcenter !== "default" ? { vcenter } : {}) });
    if (!vcenter) {
      // A source VCENTER_SOURCES does not name: acting on a VM by name in some other vCenter could
      // change the wrong VM, so the event is refused (alarms are audited).
      elog.warn({ source: ev.source }, "event from a source VCENTER_SOURCES does not name; not acting on it");
      if (work.type === "alarm") {
        const entity = n.entity;
        await report.record({
          rule: work.rule,
          decision: "skipped",
          reason: "unknown-vcenter",
          cause: { id: eventId, alarm: work.alarm },
          about: entity?.value ?? entity?.name ?? eventId,
          ...(entity?.type === "Datastore" ? { datastore: entity.name } : { vm: entity?.name }),
          dryRun: policy.remediation.dryRun,
          text: `Not acting on ${alarmText(work)}${entity?.name ? ` on ${quote(entity.name)}` : ""}: its source ${quote(ev.source)} is no vCenter VCENTER_SOURCES names.`,
        });
      }
      msg.ack();
      m.events.inc({ outcome: "unknown-source" });
      return;
    }
    const reads = work.type === "alarm" ? startReads(msg, ev, n, elog, vcenter) : undefined;
    if (work.type === "alarm" && (await state.isDone(eventId))) {
      elog.info("event already handled; dropping the repeat");
      msg.ack();
      m.events.inc({ outcome: "duplicate" });
      return;
    }
    // Evacuations and restarts take a while: tell JetStream we are alive so it does not redeliver meanwhile.
    const keepAlive = setInterval(() => msg.working(), Math.max(1000, def.ackWaitNs / 1e6 / 3));
    try {
      if (work.type === "alarm") {
        await onAlarm(reads!, ev, n, work, eventId, elog, vcenter);
        await state.markDone(eventId, now());
      } else {
        await onPowerOff(work, elog, vcenter);
      }
      msg.ack();
      m.events.inc({ outcome: "handled" });
    } catch (err) {
      const ie = IaasError.from(err);
      if (ie.retryable && delivery < def.maxDeliver) {
        elog.warn({ err: ie, code: ie.code }, `retryable failure; the event comes back (delivery ${delivery} of ${def.maxDeliver})`);
        m.events.inc({ outcome: "retried" });
        msg.nak(backoffMs(delivery));
        return;
      }
      if (ie.code === "IAAS_INTERNAL") elog.error({ err }, "handling the event failed");
      else elog.warn({ code: ie.code }, `handling the event failed: ${ie.message}`);
      try {
        if (work.type === "alarm") {
          const entity = n.entity;
          await reporterFor(report, vcenter).record({
            rule: work.rule,
            decision: "failed",
            reason: ie.retryable ? "retries-exhausted" : "vcenter-error",
            cause: { id: eventId, alarm: work.alarm },
            about: entity?.value ?? entity?.name ?? eventId,
            ...(entity?.type === "Datastore" ? { datastore: entity.name } : { vm: entity?.name }),
            dryRun: policy.remediation.dryRun,
            text: `Could not act on ${alarmText(work)}${entity?.name ? ` on ${quote(entity.name)}` : ""}: ${errText(ie)}${ie.retryable ? ` (gave up after ${delivery} tries)` : ""}.`,
          });
          await state.markDone(eventId, now());
        }
        msg.ack();
        m.events.inc({ outcome: "failed" });
      } catch (recordErr) {
        // Not even the failure could be recorded (NATS itself is away): the event comes back.
        elog.error({ err: recordErr }, "could not record the failure; the event comes back");
        msg.nak(backoffMs(delivery));
      }
    } finally {
      clearInterval(keepAlive);
    }
  }

  /**
   * A command result from IAAS_RESULTS: one that says a VM is now powered off (our own `power off`
   * or `power shutdown`, a lease that powered its VM off) applies what waits for its power-off,
   * without waiting for vCenter's power-off event (VEBA may never send it) or the re-check. Every
   * other result is acked unread.
   */
  async function onResult(msg: JsMsg): Promise<void> {
    const parsed = ResultSchema.safeParse((() => {
      try {
        return decodeJson(msg.data);
      } catch {
        return undefined;
      }
    })());
    const r = parsed.success ? parsed.data : undefined;
    if (!r || r.status !== "succeeded" || r.vm?.powerState !== "poweredOff") {
      msg.ack();
      return;
    }
    const delivery = msg.info.deliveryCount;
    const rlog = log.child({ result: r.id, command: r.command, vm: r.vm.name, delivery });
    const keepAlive = setInterval(() => msg.working(), Math.max(1000, resultsDef.ackWaitNs / 1e6 / 3));
    try {
      // The VM is in the vCenter the command named (its result says which); none named: the default one.
      await onPowerOff({ type: "power-off", moref: r.vm.moref, name: r.vm.name }, r.facts?.vcenter ? rlog.child({ vcenter: r.facts.vcenter }) : rlog, r.facts?.vcenter ?? "default");
      msg.ack();
    } catch (err) {
      const ie = IaasError.from(err);
      if (ie.retryable && delivery < resultsDef.maxDeliver) {
        rlog.warn({ err: ie, code: ie.code }, `applying deferred changes after a power-off failed; the result comes back (delivery ${delivery} of ${resultsDef.maxDeliver})`);
        msg.nak(backoffMs(delivery));
        return;
      }
      // The changes stay queued: the periodic re-check (or vCenter's power-off event) tries again.
      rlog.warn({ err: ie, code: ie.code }, "applying deferred changes after a power-off failed; they stay queued");
      msg.ack();
    } finally {
      clearInterval(keepAlive);
    }
  }

  async function recheckPending(): Promise<void> {
    if (!policy.remediation.enabled) return;
    const all = await state.allPending();
    for (const items of all.values()) {
      const first = items[0]!;
      const rlog = log.child({ recheck: true, vm: first.vm, ...(first.vcenter ? { vcenter: first.vcenter } : {}) });
      try {
        await applyPending(ctxFor(rlog, first.vcenter), items, undefined);
      } catch (err) {
        rlog.warn({ err: IaasError.from(err) }, "re-checking a deferred change failed; it stays queued");
      }
    }
  }

  function scheduleRecheck(): void {
    if (stopping) return;
    timer = setTimeout(() => {
      void exclusive(recheckPending)
        .catch((err: unknown) => log.warn({ err }, "re-checking deferred changes failed"))
        .finally(scheduleRecheck);
    }, deps.config.pendingRecheckMs);
  }

  /** Posts the summary of each minute the brake refused changes in, once that minute is over (by the brake's clock). */
  async function postBrakeSummaries(): Promise<void> {
    // The refusals counted in memory first: the summary says how many there were.
    await state.writeBrakeSkips();
    const minuteNow = Math.floor(now() / 60_000);
    for (const minute of [...state.owedSummaries].sort((a, b) => a - b)) {
      if (minute >= minuteNow) continue;
      await recordBrakeSummary({ report, state }, minute);
      state.owedSummaries.delete(minute);
    }
  }

  return {
    async start() {
      stopping = false;
      control ??= await openBucket(deps.nc, "remediationControl");
      const consumer = await jet.js.consumers.get(def.stream, def.durable);
      // Several events at a time; those of one VM in stream order (inTurn).
      loop = consumeLoop(consumer, {
        limit: EVENT_CONCURRENCY,
        what: "event",
        log,
        handle: (msg) => {
          const waiting = aliveWhileWaiting(msg, def.ackWaitNs);
          return inTurn(turnOf(msg), () => {
            waiting.stop();
            return inConsumeSpan(ServiceNames.remediation, def.durable, msg, () => handle(msg));
          })
            .catch((err: unknown) => {
              // Outside the per-event handling (the state bucket unreachable): the event comes back.
              log.error({ err, seq: msg.seq }, "could not handle an event; it comes back");
              m.events.inc({ outcome: "retried" });
              msg.nak(backoffMs(msg.info.deliveryCount));
            })
            .finally(waiting.stop);
        },
      });
      // Our own power-offs, from the command results: one at a time, each alone (inTurn without a key).
      const results = await jet.js.consumers.get(resultsDef.stream, resultsDef.durable);
      resultLoop = consumeLoop(results, {
        limit: 1,
        what: "result",
        log,
        handle: (msg) => {
          const waiting = aliveWhileWaiting(msg, resultsDef.ackWaitNs);
          return exclusive(() => {
            waiting.stop();
            return inConsumeSpan(ServiceNames.remediation, resultsDef.durable, msg, () => onResult(msg));
          })
            .finally(waiting.stop)
            .catch((err: unknown) => {
              log.error({ err, seq: msg.seq }, "could not handle a command result; it comes back");
              msg.nak(backoffMs(msg.info.deliveryCount));
            });
        },
      });
      scheduleRecheck();
      // Summaries an instance that stopped mid-minute left behind, and those of this one.
      for (const minute of await state.unsummarizedBrakeMinutes()) state.owedSummaries.add(minute);
      summaries = setInterval(() => {
        if (summarizing || (state.owedSummaries.size === 0 && !state.hasUnwrittenSkips)) return;
        summarizing = postBrakeSummaries()
          .catch((err: unknown) => log.warn({ err }, "counting the brake's refusals or posting its summary failed; tried again in a second"))
          .finally(() => (summarizing = undefined));
      }, 1000);
      log.info({ dryRun: policy.remediation.dryRun, enabled: policy.remediation.enabled, policy: policy.source }, "remediation consuming vSphere events");
    },
    async stop() {
      stopping = true;
      clearTimeout(timer);
      clearInterval(summaries);
      await summarizing;
      await loop?.stop();
      await resultLoop?.stop();
      await Promise.all([barrier, ...running]);
      // What the brake refused and was counted in memory only: written, so a restart loses none of it.
      await state.writeBrakeSkips().catch((err: unknown) => log.warn({ err }, "could not write the brake's refusals counted in memory; the minute's summary may miss them"));
    },
    recheckPending: () => exclusive(recheckPending),
  };
}

/**
 * Tells JetStream a message is being worked on while it waits for its turn (behind a VM's slow
 * change, or a barrier), so it is not delivered again meanwhile; `stop` once its turn comes.
 */
function aliveWhileWaiting(msg: JsMsg, ackWaitNs: number): { stop: () => void } {
  const timer = setInterval(() => msg.working(), Math.max(1000, ackWaitNs / 1e6 / 3));
  return { stop: () => clearInterval(timer) };
}
