import { Counter, Histogram, Gauge, Registry, collectDefaultMetrics } from "prom-client";

export { Counter, Histogram, Gauge, Registry };

/** Reads a consumer's backlog: messages not yet delivered, and delivered but not yet acked. */
export type ConsumerProbe = () => Promise<{ pending: number; ackPending: number; redelivered: number }>;

/** One registry per service, with Node's default metrics and the metrics every service shares. */
export function createMetrics(service: string) {
  const registry = new Registry();
  const probes = new Map<string, ConsumerProbe>();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  // prom-client's totals of active handles, requests and resources are gauges named like counters;
  // the same numbers by type stay (`sum(nodejs_active_handles)` is the total).
  for (const name of ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]) registry.removeSingleMetric(name);
  return {
    registry,
    commands: new Counter({
      name: "iaas_commands_total",
      help: "Commands handled, by verb and outcome (succeeded, failed, retried, duplicate).",
      labelNames: ["verb", "outcome", "code"] as const,
      registers: [registry],
    }),
    commandSeconds: new Histogram({
      name: "iaas_command_duration_seconds",
      help: "Time from a command's delivery to its final result.",
      labelNames: ["verb"] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    deadLetters: new Counter({
      name: "iaas_commands_dead_lettered_total",
      help: "Commands given up on after their last delivery failed with a retryable error, kept on IAAS_DLQ for an operator.",
      labelNames: ["verb"] as const,
      registers: [registry],
    }),
    /** Registers a JetStream consumer whose backlog is read at each scrape. */
    watchConsumer(name: string, probe: ConsumerProbe): void {
      probes.set(name, probe);
    },
    pending: new Gauge({
      name: "iaas_jetstream_pending_messages",
      help: "JetStream consumer backlog at scrape time: kind=pending (not yet delivered), ack_pending (in flight), redelivered.",
      labelNames: ["consumer", "kind"] as const,
      registers: [registry],
      async collect() {
        for (const [name, probe] of probes) {
          try {
            const p = await probe();
            this.set({ consumer: name, kind: "pending" }, p.pending);
            this.set({ consumer: name, kind: "ack_pending" }, p.ackPending);
            this.set({ consumer: name, kind: "redelivered" }, p.redelivered);
          } catch {
            // NATS away: leave the last values; readiness reports the outage.
          }
        }
      },
    }),
    redeliveries: new Counter({
      name: "iaas_jetstream_redeliveries_total",
      help: "JetStream messages delivered more than once.",
      labelNames: ["consumer"] as const,
      registers: [registry],
    }),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
