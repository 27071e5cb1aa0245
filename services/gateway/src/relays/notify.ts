import { createHash } from "node:crypto";
import { Consumers, NoticeSchema, ServiceNames, formatIssues, type Notice } from "@iaas/contracts";
import { consumeLoop, decodeJson, inConsumeSpan, type JetStreamClient, type KV, type Logger } from "@iaas/runtime";
import { JetStreamApiCodes, JetStreamApiError, type JsMsg } from "@nats-io/jetstream";
import type { GatewayMetrics } from "../metrics.js";
import { noticeMessage } from "../presentation/outcomes.js";
import type { PostMessage } from "../transport/reply.js";

export interface NoticeRelayDeps {
  js: JetStreamClient;
  /** The `iaas_notices` bucket: ids being posted or posted. */
  posted: KV;
  postMessage: PostMessage;
  /** The notify channel: notices without `to` go there; without it they are not posted. */
  channel: string | undefined;
  log: Logger;
  metrics: GatewayMetrics;
  /** Notices posted at once (each its own Slack call). */
  concurrency?: number;
  /** Delay before a notice Slack refused is tried again; default 2 s doubling to 5 min. */
  retryDelayMs?: (delivery: number) => number;
}

export interface NoticeRelay {
  stop(): Promise<void>;
}

/** 2 s, 4 s, 8 s … capped at 5 minutes: Slack outages last minutes, not seconds. */
export function noticeRetryDelayMs(delivery: number): number {
  return Math.min(300_000, 2000 * 2 ** Math.max(0, delivery - 1));
}

/** What the `iaas_notices` bucket holds for a notice id: a post under way, or done. */
const POSTING = "posting";
const POSTED = "posted";

/**
 * Posts each notice of the IAAS_NOTICES stream (remediation actions and decisions, dead letters)
 * to the notify channel with chat.postMessage, from the shared durable consumer `gateway-notices`:
 * gateway replicas split the notices, and notices published while no gateway ran are posted when
 * one starts. A notice is acked once posted (or found posted already); a post Slack refuses is
 * nak'ed with a growing delay and comes back.
 *
 * The `iaas_notices` bucket is the second guard, for a redelivery (a gateway that posted and died
 * before its ack, an ack lost, a notice published twice outside the stream's duplicate window): the
 * id is claimed (create-if-absent) before posting and marked posted after, so a notice already
 * posted is not posted again, and one another replica is posting waits for that post's outcome.
 */
export async function startNoticeRelay(d: NoticeRelayDeps): Promise<NoticeRelay> {
  const def = Consumers.gatewayNotices;
  const consumer = await d.js.consumers.get(def.stream, def.durable);
  const info = await consumer.info();
  const ackWaitMs = (info.config.ack_wait ?? def.ackWaitNs) / 1e6;
  const maxDeliver = info.config.max_deliver !== undefined && info.config.max_deliver > 0 ? info.config.max_deliver : Number.POSITIVE_INFINITY;
  d.log.info({ channel: d.channel }, "relaying notices to the notify channel");
  return consumeLoop(consumer, {
    limit: d.concurrency ?? 4,
    what: "notice",
    log: d.log,
    handle: (m) => inConsumeSpan(ServiceNames.gateway, def.durable, m, () => relayOne(d, m, { ackWaitMs, maxDeliver })),
  });
}

async function relayOne(d: NoticeRelayDeps, m: JsMsg, c: { ackWaitMs: number; maxDeliver: number }): Promise<void> {
  let notice: Notice;
  try {
    const r = NoticeSchema.safeParse(decodeJson(m.data));
    if (!r.success) throw new Error(formatIssues(r.error));
    notice = r.data;
  } catch (err) {
    // A poisoned message: never retried, never posted.
    d.log.warn({ subject: m.subject, reason: (err as Error).message }, "dropping a malformed notice");
    d.metrics.notices.inc({ outcome: "malformed" });
    m.term();
    return;
  }
  const delivery = m.info.deliveryCount;
  const log = d.log.child({ noticeId: notice.id, kind: notice.kind, delivery });
  // KV keys may not hold `:`, which notice ids may: key by a digest of the id.
  const key = createHash("sha256").update(notice.id).digest("hex");
  const keepAlive = setInterval(() => m.working(), Math.max(1000, c.ackWaitMs / 3));
  try {
    const claim = await claimNotice(d.posted, key, c.ackWaitMs);
    if (claim === "posted") {
      log.info("notice already posted; not posting again");
      d.metrics.notices.inc({ outcome: "duplicate" });
      m.ack();
      return;
    }
    if (claim === "busy") {
      // Another replica is posting it right now: look again once that post has had its time.
      log.info("another gateway is posting this notice; looking again shortly");
      m.nak(c.ackWaitMs);
      return;
    }
    // A notice for someone (a lease reminder's owner, a team's channel) goes to them; the rest to the notify channel.
    const where = notice.to ?? d.channel;
    if (where === undefined) {
      log.info("a notice for the notify channel, which is not set; not posted");
      d.metrics.notices.inc({ outcome: "unrouted" });
      await d.posted.put(key, POSTED).catch(() => undefined);
      m.ack();
      return;
    }
    const { text, blocks } = noticeMessage(notice);
    try {
      await d.postMessage(where, text, blocks);
    } catch (err) {
      await d.posted.delete(key).catch(() => undefined);
      d.metrics.notices.inc({ outcome: "failed" });
      if (delivery >= c.maxDeliver) {
        log.error({ err }, `chat.postMessage failed for a notice; giving up after ${delivery} tries`);
        m.term();
        return;
      }
      const delay = (d.retryDelayMs ?? noticeRetryDelayMs)(delivery);
      log.warn({ err, retryInMs: delay }, "chat.postMessage failed for a notice; it comes back");
      m.nak(delay);
      return;
    }
    d.metrics.notices.inc({ outcome: "posted" });
    log.info("notice posted");
    // Marked before the ack: a redelivery after this point finds it posted.
    await d.posted.put(key, POSTED).catch((err: unknown) => log.warn({ err }, "posted, but could not mark the notice posted"));
    m.ack();
  } catch (err) {
    // The bucket (NATS) failed, not Slack: try again shortly.
    log.warn({ err }, "could not claim a notice; it comes back");
    m.nak(2_000);
  } finally {
    clearInterval(keepAlive);
  }
}

/**
 * Takes the notice for this gateway: `mine` when it is ours to post, `posted` when a post already
 * succeeded, `busy` when another replica claimed it less than two ack waits ago. An older claim is
 * one whose gateway died before it knew the outcome: it is taken over (a notice may then be posted
 * twice, which beats losing it).
 */
async function claimNotice(kv: KV, key: string, ackWaitMs: number): Promise<"mine" | "posted" | "busy"> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await kv.create(key, POSTING);
      return "mine";
    } catch (err) {
      if (!isWrongLast(err)) throw err;
    }
    const e = await kv.get(key);
    if (!e || e.operation !== "PUT") continue;
    // Anything but a claim is a finished post (an older gateway stored the notice id itself).
    if (e.string() !== POSTING) return "posted";
    if (Date.now() - e.created.getTime() < 2 * ackWaitMs) return "busy";
    try {
      await kv.update(key, POSTING, e.revision);
      return "mine";
    } catch (err) {
      if (!isWrongLast(err)) throw err;
    }
  }
  return "busy";
}

function isWrongLast(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);
}
