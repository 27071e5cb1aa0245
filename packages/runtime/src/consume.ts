import type { Consumer, ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import type { Logger } from "./log.js";

/** Back-off before a retryable failure is tried again: 1 s, 2 s, 4 s ... capped at 30 s. */
export function backoffMs(delivery: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.max(0, delivery - 1));
}

export interface ConsumeLoopOptions {
  /** Messages handled at once (and asked of the server at a time); 1 handles them one by one, in order. */
  limit: number;
  /**
   * Handles one message and acks, naks or terms it. A rejection is logged and the message left
   * alone: JetStream delivers it again after its ack wait.
   */
  handle(m: JsMsg): Promise<void>;
  log: Logger;
  /** What the consumer reads, for the log (`command`, `result`, `event`). */
  what: string;
}

export interface ConsumeLoop {
  /** Stops fetching; resolves once the messages in hand are handled. */
  stop(): Promise<void>;
}

/**
 * The one loop over a JetStream pull consumer. It keeps at most `limit` messages in hand, and when
 * the subscription ends under it (NATS reconnecting, the consumer re-created, a heartbeat missed)
 * it logs, waits a second and consumes again, until stopped.
 */
export function consumeLoop(consumer: Consumer, opts: ConsumeLoopOptions): ConsumeLoop {
  const inflight = new Set<Promise<void>>();
  let messages: ConsumerMessages | undefined;
  let stopping = false;

  const loop = (async () => {
    while (!stopping) {
      try {
        messages = await consumer.consume({ max_messages: opts.limit });
        for await (const m of messages) {
          const p = opts
            .handle(m)
            .catch((err: unknown) => opts.log.error({ err, subject: m.subject, seq: m.seq }, `could not handle a ${opts.what} message; it comes back`))
            .finally(() => inflight.delete(p));
          inflight.add(p);
          while (inflight.size >= opts.limit) await Promise.race(inflight);
        }
      } catch (err) {
        if (stopping) break;
        opts.log.warn({ err }, `${opts.what} consumer interrupted; resuming`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  })();

  return {
    stop: async () => {
      stopping = true;
      await messages?.close();
      await loop;
      await Promise.allSettled([...inflight]);
    },
  };
}
