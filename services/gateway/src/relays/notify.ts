import { createHash } from "node:crypto";
import { NoticeSchema, Subjects, formatIssues, type Notice } from "@iaas/contracts";
import { decodeJson, type KV, type Logger, type NatsConnection } from "@iaas/runtime";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import type { GatewayMetrics } from "../metrics.js";
import { noticeMessage } from "../presentation/outcomes.js";
import type { PostMessage } from "../transport/reply.js";

/** Gateway replicas share each notice: one of them takes it (queue group), the KV claim stops repeats. */
export const NOTIFY_QUEUE = "gateway-notify";

export interface NoticeRelayDeps {
  nc: NatsConnection;
  /** The `iaas_notices` bucket: ids already posted. */
  posted: KV;
  postMessage: PostMessage;
  channel: string;
  log: Logger;
  metrics: GatewayMetrics;
}

export interface NoticeRelay {
  stop(): Promise<void>;
}

/**
 * Posts each notice on `iaas.notify.>` (remediation actions and decisions, dead letters) to the
 * notify channel with chat.postMessage, once per notice id: the id is claimed in a KV bucket
 * (create-if-absent) before posting, and the claim is released if the post fails, so a notice
 * published again (the sender retried) is neither lost nor posted twice.
 */
export function startNoticeRelay(d: NoticeRelayDeps): NoticeRelay {
  const sub = d.nc.subscribe(Subjects.notifyAll, { queue: NOTIFY_QUEUE });
  const inflight = new Set<Promise<void>>();
  const loop = (async () => {
    for await (const m of sub) {
      const p = relayOne(d, m.data).finally(() => inflight.delete(p));
      inflight.add(p);
    }
  })();
  d.log.info({ channel: d.channel }, "relaying notices to the notify channel");
  return {
    stop: async () => {
      await sub.drain().catch(() => undefined);
      await loop;
      await Promise.allSettled([...inflight]);
    },
  };
}

async function relayOne(d: NoticeRelayDeps, data: Uint8Array): Promise<void> {
  let notice: Notice;
  try {
    const r = NoticeSchema.safeParse(decodeJson(data));
    if (!r.success) throw new Error(formatIssues(r.error));
    notice = r.data;
  } catch (err) {
    d.log.warn({ reason: (err as Error).message }, "dropping a malformed notice");
    d.metrics.notices.inc({ outcome: "malformed" });
    return;
  }
  const log = d.log.child({ noticeId: notice.id, kind: notice.kind });
  // KV keys may not hold `:`, which notice ids may: key by a digest of the id.
  const key = createHash("sha256").update(notice.id).digest("hex");
  try {
    await d.posted.put(key, notice.id, { previousSeq: 0 });
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence) {
      log.info("notice already posted; not posting again");
      d.metrics.notices.inc({ outcome: "duplicate" });
      return;
    }
    log.warn({ err }, "could not claim the notice; posting anyway");
  }
  const { text, blocks } = noticeMessage(notice);
  try {
    await d.postMessage(d.channel, text, blocks);
    d.metrics.notices.inc({ outcome: "posted" });
    log.info("notice posted");
  } catch (err) {
    log.warn({ err }, "chat.postMessage failed for a notice");
    d.metrics.notices.inc({ outcome: "failed" });
    await d.posted.delete(key).catch(() => undefined);
  }
}
