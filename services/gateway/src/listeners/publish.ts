import { Headers, ServiceNames, Subjects, type Command } from "@iaas/contracts";
import { SpanKind, encodeJson, makeHeaders, natsAttributes, startHop, type JetStreamClient } from "@iaas/runtime";
import type { RequestRecord, RequestStore } from "../stores/requests.js";

/** Where a command's answers go: its request record without the delivery counters. */
export type ReplyTarget = Omit<RequestRecord, "posts" | "finalDelivered">;

/**
 * The one way a command reaches the command services, for a typed command (slash.ts) and a
 * confirmed one (confirm.ts): its reply target is stored first, then the command is published
 * with `Nats-Msg-Id` = its id, so a repeat is dropped by JetStream and answered once.
 */
export class CommandPublisher {
  constructor(private readonly d: { js: JetStreamClient; requests: RequestStore }) {}

  /**
   * Starts storing the reply target (true when it is new). Started before the caller's other
   * round trips so they overlap; a failure is reported by `publish`, never unhandled.
   */
  remember(target: ReplyTarget, opts: { posts: number; timeoutMs: number }): Promise<boolean> {
    const stored = this.d.requests.create({ ...target, text: target.text.slice(0, 4000), posts: opts.posts, finalDelivered: false }, opts.timeoutMs);
    stored.catch(() => undefined);
    return stored;
  }

  /** Publishes once `stored` is done; a duplicate when JetStream or the store had it already. */
  async publish(command: Command, stored: Promise<boolean>, opts: { traceparent: string; timeoutMs: number }): Promise<{ duplicate: boolean }> {
    const created = await stored;
    const subject = Subjects.command(command.area, command.action);
    const body = encodeJson(command);
    // A producer span under the request's; the command service's consumer span is its child.
    const hop = startHop(ServiceNames.gateway, `publish ${subject}`, SpanKind.PRODUCER, { ...natsAttributes(subject, "send", "publish"), "messaging.message.id": command.id, "messaging.message.body.size": body.length }, opts.traceparent);
    const headers = makeHeaders({ [Headers.traceparent]: hop.span.isRecording() ? hop.traceparent : opts.traceparent, [Headers.requestId]: command.id });
    try {
      const pa = await this.d.js.publish(subject, body, { msgID: command.id, timeout: opts.timeoutMs, headers });
      return { duplicate: pa.duplicate || !created };
    } catch (err) {
      hop.fail(err);
      throw err;
    } finally {
      hop.end();
    }
  }
}
