import { Counter, Gauge, type Metrics } from "@iaas/runtime";

/** The lease keeper's metrics, on the service registry (served at `/metrics`). */
export function keeperMetrics(m: Metrics) {
  return {
    steps: new Counter({
      name: "iaas_lease_steps_total",
      help: "Lease steps (remind, expire, grace, invalid) by outcome: what was done (sent, powered-off, already-off, kept, deleted, gone, told), or failed (given back; the next round tries again).",
      labelNames: ["step", "outcome"] as const,
      registers: [m.registry],
    }),
    rounds: new Counter({
      name: "iaas_lease_rounds_total",
      help: "Rounds over the leased VMs, by outcome (ok; failed: the VMs could not be listed, vcenter-proxy or vCenter away).",
      labelNames: ["outcome"] as const,
      registers: [m.registry],
    }),
    overdue: new Gauge({
      name: "iaas_lease_overdue_vms",
      help: "Leased VMs whose lease has ended and whose power-off step is still not done, as of the last round that listed them.",
      registers: [m.registry],
    }),
  };
}
export type KeeperMetrics = ReturnType<typeof keeperMetrics>;
