import { Counter, Histogram, type Metrics } from "@iaas/runtime";

/** The bridge's own Prometheus metrics, on the service registry (served by the health server's /metrics). */
export function bridgeMetrics(metrics: Metrics) {
  const { registry } = metrics;
  // A registry refuses a second metric of the same name: reuse it when the bridge is built twice.
  const existing = <T>(name: string) => registry.getSingleMetric(name) as T | undefined;
  return {
    events:
      existing<Counter<"event_class" | "outcome">>("iaas_bridge_events_total") ??
      new Counter({
        name: "iaas_bridge_events_total",
        help: "vSphere events received, by event class and outcome (published, duplicate, failed).",
        labelNames: ["event_class", "outcome"] as const,
        registers: [registry],
      }),
    rejects:
      existing<Counter<"reason">>("iaas_bridge_rejects_total") ??
      new Counter({
        name: "iaas_bridge_rejects_total",
        help: "Requests refused with a 4xx, by reason.",
        labelNames: ["reason"] as const,
        registers: [registry],
      }),
    publishSeconds:
      existing<Histogram<"outcome">>("iaas_bridge_publish_duration_seconds") ??
      new Histogram({
        name: "iaas_bridge_publish_duration_seconds",
        help: "Time from publishing one event to JetStream's ack (or failure).",
        labelNames: ["outcome"] as const,
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        registers: [registry],
      }),
  };
}
export type BridgeMetrics = ReturnType<typeof bridgeMetrics>;
