import { Counter, type Metrics } from "@iaas/runtime";

/** Remediation's Prometheus metrics, on the service registry (served at /metrics). */
export function remediationMetrics(metrics: Metrics) {
  const { registry } = metrics;
  // A registry refuses a second metric of the same name: reuse it when the service is built twice.
  const existing = <T>(name: string) => registry.getSingleMetric(name) as T | undefined;
  return {
    actions:
      existing<Counter<"rule" | "outcome" | "reason">>("iaas_remediation_actions_total") ??
      new Counter({
        name: "iaas_remediation_actions_total",
        help: "Remediation actions by rule (cpu, memory, datastore, vmStorage), outcome (applied, dry-run, deferred, failed) and reason.",
        labelNames: ["rule", "outcome", "reason"] as const,
        registers: [registry],
      }),
    skips:
      existing<Counter<"rule" | "reason">>("iaas_remediation_skips_total") ??
      new Counter({
        name: "iaas_remediation_skips_total",
        help: "Decisions not to act, by rule and reason (cooldown, at-cap, cleared, no-target, brake, ...).",
        labelNames: ["rule", "reason"] as const,
        registers: [registry],
      }),
    events:
      existing<Counter<"outcome">>("iaas_remediation_events_total") ??
      new Counter({
        name: "iaas_remediation_events_total",
        help: "vSphere events read from the stream, by outcome (handled, ignored, duplicate, retried, poison, failed, unknown-source).",
        labelNames: ["outcome"] as const,
        registers: [registry],
      }),
  };
}
export type RemediationMetrics = ReturnType<typeof remediationMetrics>;
