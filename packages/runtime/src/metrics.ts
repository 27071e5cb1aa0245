import { Counter, Histogram, Gauge, Registry, collectDefaultMetrics } from "prom-client";

export { Counter, Histogram, Gauge, Registry };

/** One registry per service, with Node's default metrics and the metrics every service shares. */
export function createMetrics(service: string) {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
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
    redeliveries: new Counter({
      name: "iaas_jetstream_redeliveries_total",
      help: "JetStream messages delivered more than once.",
      labelNames: ["consumer"] as const,
      registers: [registry],
    }),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
