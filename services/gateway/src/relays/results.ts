import { Consumers, ResultSchema, ServiceNames, Subjects, formatIssues, type Result } from "@iaas/contracts";
import { consumeLoop, decodeJson, inConsumeSpan, type JetStreamClient, type Logger } from "@iaas/runtime";
import type { JsMsg } from "@nats-io/jetstream";
import type { GatewayMetrics } from "../metrics.js";
import { resultMessage } from "../presentation/outcomes.js";
import type { Replier } from "../transport/reply.js";
import type { RequestStore, StoredRequest } from "../stores/requests.js";

export interface ResultRelayDeps {
  js: JetStreamClient;
  requests: RequestStore;
  replier: Replier;
  log: Logger;
  metrics: GatewayMetrics;
  /** Called with the requester once a command's final result was relayed (the App Home refreshes). */
  onFinal?: (userId: string) => void;
  /** Results relayed at once (different requests; one request's results stay in order). */
  concurrency?: number;
}

export interface ResultRelay {
  stop(): Promise<void>;
}

/**
 * Relays `iaas.result.<id>` to Slack from the shared durable consumer `gateway-results`, so
 * gateway instances split the work and a restart resumes where it stopped. Each message is
 * acked after its post (or after deciding not to post); a message that cannot be handled
 * because NATS itself failed is nak'ed and comes back.
 */
export async function startResultRelay(d: ResultRelayDeps): Promise<ResultRelay> {
  const def = Consumers.gatewayResults;
  const consumer = await d.js.consumers.get(def.stream, def.durable);
  // Per request id, the tail of its chain: progress, then final, posted in stream order.
  const chains = new Map<string, Promise<void>>();
  return consumeLoop(consumer, {
    limit: d.concurrency ?? 8,
    what: "result",
    log: d.log,
    handle: (m) => {
      const key = m.subject;
      const p = (chains.get(key) ?? Promise.resolve()).then(() => inConsumeSpan(ServiceNames.gateway, def.durable, m, () => relayOne(m, d, def.ackWaitNs)));
      chains.set(key, p);
      return p.finally(() => {
        if (chains.get(key) === p) chains.delete(key);
      });
    },
  });
}

async function relayOne(m: JsMsg, d: ResultRelayDeps, ackWaitNs: number): Promise<void> {
  let result: Result;
  try {
    const parsed = ResultSchema.safeParse(decodeJson(m.data));
    if (!parsed.success) throw new Error(formatIssues(parsed.error));
    result = parsed.data;
    if (Subjects.result(result.id) !== m.subject) throw new Error(`result id ${result.id} does not match its subject`);
  } catch (err) {
    // A poisoned message: never retried, never posted.
    d.log.warn({ subject: m.subject, reason: (err as Error).message }, "dropping a malformed result message");
    d.metrics.results.inc({ outcome: "malformed" });
    m.term();
    return;
  }
  const log = d.log.child({ requestId: result.id, status: result.status });
  // Posting may take a few retries; keep JetStream from redelivering meanwhile.
  const keepAlive = setInterval(() => m.working(), Math.max(1000, ackWaitNs / 1e6 / 3));
  try {
    const stored = await d.requests.get(result.id);
    if (!stored) {
      // Commands published over NATS by an operator have no Slack request; that is normal.
      log.info("result for a request the gateway did not take; nothing to post");
      d.metrics.results.inc({ outcome: "unknown_request" });
      m.ack();
      return;
    }
    const rec = stored.record;
    const kind = result.status === "progress" ? "progress" : "final";
    if (kind === "final" && rec.finalDelivered) {
      log.info("final result already delivered; not posting again");
      d.metrics.results.inc({ outcome: "duplicate" });
      m.ack();
      return;
    }
    const { via, stored: after } = await d.replier.deliver(stored, resultMessage(result, rec.text), kind);
    if (kind === "final") {
      await markDelivered(d, after, log);
      d.onFinal?.(rec.userId);
    }
    d.metrics.replies.inc({ kind, via });
    d.metrics.results.inc({ outcome: "relayed" });
    log.info({ via }, "result relayed");
    m.ack();
  } catch (err) {
    // The store (NATS) failed, not Slack: try again shortly.
    log.warn({ err }, "could not relay a result; will retry");
    d.metrics.results.inc({ outcome: "retried" });
    m.nak(2_000);
  } finally {
    clearInterval(keepAlive);
  }
}

/**
 * Records that the final result was posted. Posting comes first: a gateway killed before it posts
 * must leave the result to be posted by the next delivery (at least once; a lost result is worse
 * than a repeated one). A store failure after a successful post (a NATS leader moving) is retried
 * here for a few seconds rather than by redelivering, which would post again.
 */
async function markDelivered(d: { requests: RequestStore }, known: StoredRequest, log: Logger): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      // The first try writes over the revision just taken; after a failure, it reads again.
      await d.requests.markFinalDelivered(known.record.id, attempt === 1 ? known : undefined);
      return;
    } catch (err) {
      if (attempt >= 20) throw err;
      if (attempt === 1) log.warn({ err }, "posted, but could not record it yet; retrying");
      await new Promise((r) => setTimeout(r, 250 * Math.min(attempt, 4)));
    }
  }
}
