import { ensureConsumer, ensureStreams, jetstreamFor, openBucket, type Logger, type NatsConnection } from "@iaas/runtime";

/**
 * The JetStream resources the gateway uses: the streams it publishes to or reads (commands,
 * results, notices; audit and dead letters so a lone gateway still leaves a working system), its
 * durable result and notice consumers and its buckets (requests, confirmations, rate limits, posted notices, quota
 * reservations, approvals). Idempotent; an existing stream is left as
 * an operator tuned it.
 */
export async function ensureGatewayResources(nc: NatsConnection, log: Logger): Promise<void> {
  const { jsm } = await jetstreamFor(nc);
  await ensureStreams(jsm, ["commands", "results", "audit", "deadLetters", "notices"], log);
  await ensureConsumer(jsm, "gatewayResults");
  await ensureConsumer(jsm, "gatewayNotices");
  await openBucket(nc, "requests");
  await openBucket(nc, "confirmations");
  await openBucket(nc, "rateLimits");
  await openBucket(nc, "notices");
  await openBucket(nc, "quotas");
  await openBucket(nc, "remediationControl");
  await openBucket(nc, "approvals");
}
