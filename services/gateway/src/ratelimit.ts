import type { KV, Logger } from "@iaas/runtime";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";

export type RateDecision = { ok: true } | { ok: false; limit: number };

/**
 * Commands per user per minute (policy `rateLimit.perUserPerMinute`), counted in a KV bucket so
 * every gateway replica shares the count: one key per user and clock minute, incremented with
 * compare-and-set; the bucket's max age clears old minutes. A fixed window: a burst across a
 * minute boundary may reach twice the limit, which is fine for its purpose (keeping one user from
 * flooding vCenter), and it needs no clock agreement beyond the minute.
 *
 * If NATS cannot answer in time the command is let through (and logged): the limit protects
 * capacity, not safety; policy, protection and confirmation are checked regardless.
 */
export class RateLimiter {
  constructor(
    private readonly kv: KV,
    private readonly limit: () => number,
    private readonly now: () => number,
    private readonly log: Logger,
    private readonly timeoutMs = 1_000,
  ) {}

  async hit(userId: string): Promise<RateDecision> {
    const limit = this.limit();
    const key = `${userId}.${Math.floor(this.now() / 60_000)}`;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), this.timeoutMs);
    });
    try {
      const r = await Promise.race([this.increment(key, limit), timeout]);
      if (r === "timeout") {
        this.log.warn({ userId }, "rate limit not checked: the rate-limit bucket did not answer in time");
        return { ok: true };
      }
      return r;
    } catch (err) {
      this.log.warn({ err, userId }, "rate limit not checked");
      return { ok: true };
    } finally {
      clearTimeout(timer);
    }
  }

  private async increment(key: string, limit: number): Promise<RateDecision> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const e = await this.kv.get(key);
      try {
        if (!e || e.operation !== "PUT") {
          await this.kv.put(key, "1", { previousSeq: e?.revision ?? 0 });
          return { ok: true };
        }
        const n = Number(e.string()) || 0;
        if (n >= limit) return { ok: false, limit };
        await this.kv.update(key, String(n + 1), e.revision);
        return { ok: true };
      } catch (err) {
        // Another replica counted first: read again.
        if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence) continue;
        throw err;
      }
    }
    throw new Error("too many concurrent updates of the rate-limit counter");
  }
}
