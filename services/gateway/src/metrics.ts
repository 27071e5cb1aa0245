import { Counter, Gauge, Histogram, type Metrics } from "@iaas/runtime";

/** The gateway's metrics, on the service registry (served at `/metrics`). */
export function gatewayMetrics(m: Metrics) {
  return {
    /** `iaas_commands_total{verb, outcome, code}`: outcome is accepted, duplicate, rejected, unavailable, answered (queries), confirm (buttons shown) or limited. */
    commands: m.commands,
    ackSeconds: new Histogram({
      name: "iaas_gateway_ack_seconds",
      help: "Time from a verified slash command to its ack (Slack allows 3 s).",
      labelNames: ["verb"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5],
      registers: [m.registry],
    }),
    replies: new Counter({
      name: "iaas_gateway_replies_total",
      help: "Result messages relayed to Slack, by kind (progress, final) and how (response_url, chat, none).",
      labelNames: ["kind", "via"] as const,
      registers: [m.registry],
    }),
    confirmations: new Counter({
      name: "iaas_gateway_confirmations_total",
      help: "Confirm/Cancel clicks, by outcome (confirmed, cancelled, expired, consumed, not_requester, unknown).",
      labelNames: ["outcome"] as const,
      registers: [m.registry],
    }),
    notices: new Counter({
      name: "iaas_gateway_notices_total",
      help: "Notices from the IAAS_NOTICES stream, by outcome (posted, duplicate, malformed, failed: a post Slack refused, tried again later).",
      labelNames: ["outcome"] as const,
      registers: [m.registry],
    }),
    usergroupRefreshes: new Counter({
      name: "iaas_gateway_usergroup_refreshes_total",
      help: "Reads of Slack user group membership (usergroups.list), by outcome (ok, failed); only when the policy binds groups.",
      labelNames: ["outcome"] as const,
      registers: [m.registry],
    }),
    results: new Counter({
      name: "iaas_gateway_results_total",
      help: "Result messages consumed, by outcome (relayed, unknown_request, duplicate, malformed, retried).",
      labelNames: ["outcome"] as const,
      registers: [m.registry],
    }),
    /** Set by each replica's approval sweep (every APPROVALS_SWEEP_S); replicas report the same bucket: take max(). */
    approvalsPending: new Gauge({
      name: "iaas_gateway_approvals_pending",
      help: "Requests for approval that wait for a decision and have not expired, as of this replica's last approval sweep.",
      registers: [m.registry],
    }),
    approvalOldestPendingSeconds: new Gauge({
      name: "iaas_gateway_approval_oldest_pending_seconds",
      help: "Age of the oldest request for approval still waiting for a decision (0 when none), as of the last approval sweep.",
      registers: [m.registry],
    }),
  };
}
export type GatewayMetrics = ReturnType<typeof gatewayMetrics>;
