import { Counter, Gauge, Histogram, type Metrics } from "@iaas/runtime";

/** Distinct event sources (vCenters) given their own series; an estate has a handful, a sender that invents sources gets no more. */
const MAX_SOURCES = 64;
/** The sources given a series so far, per registry (the bridge and its pollers share one). */
const seenSources = new WeakMap<object, Set<string>>();

/** The bridge's own Prometheus metrics, on the service registry (served by the health server's /metrics). */
export function bridgeMetrics(metrics: Metrics) {
  const { registry } = metrics;
  // A registry refuses a second metric of the same name: reuse it when the bridge is built twice.
  const existing = <T>(name: string) => registry.getSingleMetric(name) as T | undefined;
  const lastEvent =
    existing<Gauge<"source">>("iaas_bridge_last_event_timestamp_seconds") ??
    new Gauge({
      name: "iaas_bridge_last_event_timestamp_seconds",
      help: "When the bridge last took in a vSphere event (from VEBA or its poller; stored, or already in the stream), by the vCenter it came from (the event source), in Unix seconds.",
      labelNames: ["source"] as const,
      registers: [registry],
    });
  let sources = seenSources.get(registry);
  if (!sources) seenSources.set(registry, (sources = new Set()));
  const seen = sources;
  return {
    /** Notes that an event from `source` was stored now. A source is a label: past the first MAX_SOURCES, the rest count as "other". */
    eventFrom(source: string): void {
      if (!seen.has(source) && seen.size >= MAX_SOURCES) source = "other";
      else seen.add(source);
      lastEvent.set({ source }, Date.now() / 1000);
    },
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
