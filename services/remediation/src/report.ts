import { createHash } from "node:crypto";
import {
  Headers,
  RemediationAuditSchema,
  Subjects,
  noticeSubject,
  type Notice,
  type NoticeKind,
  type RemediationAudit,
  type RemediationRule,
} from "@iaas/contracts";
import { activeTraceparent, encodeJson, makeHeaders, type Jet, type Logger } from "@iaas/runtime";
import type { RemediationMetrics } from "./metrics.js";
import type { RemediationState } from "./state.js";

/** Why remediation acted as it did, or did not act: stable codes (metric labels, audit `reason`). */
export const Reasons = {
  acted: ["hot-add", "powered-off", "restarted", "deferred-applied", "relocated"],
  deferred: ["no-hot-add", "restart-not-allowed"],
  skipped: [
    "disabled",
    "paused",
    "cleared",
    "superseded",
    "wrong-entity",
    "unknown-vcenter",
    "vm-not-found",
    "vm-ambiguous",
    "vm-changed",
    "template",
    "cooldown",
    "at-cap",
    "no-hot-add",
    "already-pending",
    "already-applied",
    "brake",
    "storm",
    "flapping",
    "datastore-not-found",
    "below-threshold",
    "no-vms",
    "no-target",
  ],
  failed: ["vcenter-error", "retries-exhausted"],
} as const;

export type DecisionKind = keyof typeof Reasons;
export type Reason<D extends DecisionKind = DecisionKind> = (typeof Reasons)[D][number];

export type Decision = {
  [D in DecisionKind]: {
    rule: RemediationRule;
    decision: D;
    reason: Reason<D>;
    /** One line in plain text, names between backticks; the gateway escapes it for Slack. */
    text: string;
    vm?: string | undefined;
    datastore?: string | undefined;
    /** The vCenter of the VM or datastore when it is not the default one (set by `reporterFor`). */
    vcenter?: string | undefined;
    change?: RemediationAudit["change"];
    /** What caused it: the event's id (or a deferral's id) and, for alarms, the alarm's name. */
    cause: { id: string; alarm?: string | undefined };
    /** The VM or datastore the decision is about; with the cause, decision and reason it makes the notice id. */
    about: string;
    dryRun: boolean;
    /** false: audit and metrics only, no Slack notice (a cap episode already noticed). */
    notify?: boolean;
  };
}[DecisionKind];

const KIND: Record<DecisionKind, NoticeKind> = {
  acted: "remediation.action",
  deferred: "remediation.deferred",
  skipped: "remediation.skip",
  failed: "remediation.failed",
};

const WARN: ReadonlySet<Reason> = new Set<Reason>(["at-cap", "no-target", "brake", "storm", "flapping", "vm-not-found", "vm-ambiguous", "vm-changed", "datastore-not-found"]);

function severityOf(d: Decision): Notice["severity"] {
  if (d.decision === "failed") return "error";
  return WARN.has(d.reason) ? "warning" : "info";
}

/** The notice (and audit) id of a decision: the same decision about the same cause always has the same id. */
export function decisionId(d: Pick<Decision, "rule" | "cause" | "about" | "decision" | "reason">): string {
  const h = createHash("sha256").update([d.cause.id, d.about, d.decision, d.reason].join("\u0000")).digest("hex");
  return `rem-${d.rule}-${h.slice(0, 40)}`;
}

export interface Reporter {
  /** Records a decision: the audit stream and the notices stream (JetStream, deduplicated by id), metrics, log. */
  record(d: Decision): Promise<string>;
}

/** The reporter of one vCenter's decisions: they name it, unless it is the default one. */
export function reporterFor(report: Reporter, vcenter: string): Reporter {
  return vcenter === "default" ? report : { record: (d) => report.record({ ...d, vcenter }) };
}

/**
 * Every decision goes to the audit stream first, then its notice to the IAAS_NOTICES stream (kept
 * until a gateway posts it). Both publishes are acked by JetStream and carry the decision id as
 * Nats-Msg-Id, so when one fails the event is not acked and comes back, and a decision recorded
 * again after a redelivery is stored (and posted) once.
 */
export function createReporter(deps: { jet: Jet; log: Logger; metrics: RemediationMetrics; now: () => number }): Reporter {
  return {
    async record(d) {
      const id = decisionId(d);
      const at = new Date(deps.now()).toISOString();
      const audit: RemediationAudit = RemediationAuditSchema.parse({
        kind: "remediation",
        id,
        rule: d.rule,
        decision: d.decision,
        reason: d.reason,
        ...(d.vm ? { vm: d.vm } : {}),
        ...(d.datastore ? { datastore: d.datastore } : {}),
        ...(d.vcenter ? { vcenter: d.vcenter } : {}),
        ...(d.change ? { change: d.change } : {}),
        cause: d.cause.id.slice(0, 300),
        ...(d.cause.alarm ? { alarm: d.cause.alarm } : {}),
        dryRun: d.dryRun,
        message: d.text.slice(0, 3000),
        at,
      });
      // The event's consumer span, when traced: the gateway's post of the notice continues its trace.
      const tp = activeTraceparent();
      const headers = tp ? makeHeaders({ [Headers.traceparent]: tp }) : undefined;
      await deps.jet.js.publish(Subjects.audit("remediation"), encodeJson(audit), { msgID: id, ...(headers ? { headers } : {}) });
      if (d.notify !== false) {
        const notice: Notice = {
          id,
          kind: KIND[d.decision],
          severity: severityOf(d),
          text: d.text.slice(0, 3000),
          ...(d.vm ? { vm: d.vm } : {}),
          ...(d.datastore ? { datastore: d.datastore } : {}),
          ...(d.vcenter ? { vcenter: d.vcenter } : {}),
          cause: d.cause.id.slice(0, 300),
          rule: d.rule,
          decision: d.decision,
          reason: d.reason,
          ...(d.cause.alarm ? { alarm: d.cause.alarm.slice(0, 300) } : {}),
          ...(d.change ? { change: d.change } : {}),
          ...(d.dryRun ? { dryRun: true } : {}),
          at,
        };
        await deps.jet.js.publish(noticeSubject(notice.kind), encodeJson(notice), { msgID: id, ...(headers ? { headers } : {}) });
      }
      if (d.decision === "skipped") deps.metrics.skips.inc({ rule: d.rule, reason: d.reason });
      else deps.metrics.actions.inc({ rule: d.rule, outcome: d.decision === "acted" ? (d.dryRun ? "dry-run" : "applied") : d.decision, reason: d.reason });
      deps.log.info({ id, rule: d.rule, decision: d.decision, reason: d.reason, vm: d.vm, datastore: d.datastore, cause: d.cause.id, dryRun: d.dryRun, notified: d.notify !== false }, d.text);
      return id;
    },
  };
}

/**
 * A change the brake (remediation.maxActionsPerMinute) refused: audited like every decision, but
 * not posted one by one. The refusals of a minute are counted in the remediation state
 * (`brakeskips.<minute>`, with the first one's facts; counted in memory and written once a second)
 * and the skips metric; the minute's one summary
 * notice, with that count, is posted once the minute is over (`recordBrakeSummary`), so a storm of
 * red alarms (a host failure) is one message, not hundreds.
 */
export async function recordBrakeSkip(deps: { report: Reporter; state: RemediationState; now: () => number }, d: Extract<Decision, { decision: "skipped" }>, limit: number): Promise<void> {
  deps.state.noteBrakeSkip(deps.now(), d.cause.id, { rule: d.rule, dryRun: d.dryRun, limit, first: d.text.slice(0, 1500) });
  await deps.report.record({ ...d, reason: "brake", notify: false });
}

/** The summary notice of a minute the brake refused changes in, once: how many, until when, the first. */
export async function recordBrakeSummary(deps: { report: Reporter; state: RemediationState }, minute: number): Promise<void> {
  const m = await deps.state.brakeMinute(minute);
  // Without its facts, the minute was counted by a version that posted its summary at once.
  if (!m?.summary || m.summarized) return;
  const hhmm = (t: number) => new Date(t).toISOString().slice(11, 16);
  const { rule, dryRun, limit, first } = m.summary;
  const changes = m.skipped === 1 ? "1 change" : `${m.skipped} changes`;
  await deps.report.record({
    rule,
    decision: "skipped",
    reason: "storm",
    about: "brake",
    cause: { id: `brake-minute-${minute}` },
    dryRun,
    text: `Remediation reached its limit of ${limit} changes a minute (remediation.maxActionsPerMinute): it skipped ${changes} for red alarms between ${hhmm(minute * 60_000)} and ${hhmm((minute + 1) * 60_000)} UTC, recorded in the audit, not acted on, and not posted one by one. The first was: ${first}`,
  });
  await deps.state.markBrakeSummarized(minute);
}
