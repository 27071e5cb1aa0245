import type { KV, Logger } from "@iaas/runtime";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";

export type RateDecision = { ok: true } | { ok: false; limit: number };

/** One user's clock minute as this instance last saw it, and the hits waiting to be counted. */
interface Window {
  minute: number;
  /** The count and its KV revision after this instance's last read or write; undefined: read it. */
  known: { count: number; revision: number } | undefined;
  waiting: ((d: RateDecision | Error) => void)[];
  busy: boolean;
}

/**
 * Commands per user per minute (policy `rateLimit.perUserPerMinute`), counted in a KV bucket so
 * every gateway replica shares the count: one key per user and clock minute, incremented with
 * compare-and-set; the bucket's max age clears old minutes. A fixed window: a burst across a
 * minute boundary may reach twice the limit, which is fine for its purpose (keeping one user from
 * flooding vCenter), and it needs no clock agreement beyond the minute.
 *
 * Cheap in the usual case, still exact across replicas:
 * - the count and revision this instance last wrote are remembered, so a hit is one
 *   compare-and-set (one round trip) instead of a read and a write; when another replica has
 *   counted since, the write is refused (wrong last sequence) and the key is read again;
 * - hits for one key that arrive while its write is in flight are counted together by the next
 *   write, so one user's burst is one write per round trip instead of a storm of conflicting
 *   ones (which at 200 commands/s ran out of retries and let commands through uncounted);
 * - a remembered count already at the limit refuses without a round trip: within its minute a
 *   key's count only grows.
 *
 * If NATS cannot answer in time the command is let through (and logged): the limit protects
 * capacity, not safety; policy, protection and confirmation are checked regardless.
 */
export class RateLimiter {
  private readonly windows = new Map<string, Window>();
  private minute = -1;

  constructor(
    private readonly kv: KV,
    private readonly limit: () => number,
    private readonly now: () => number,
    private readonly log: Logger,
    private readonly timeoutMs = 1_000,
  ) {}

  hit(userId: string): Promise<RateDecision> {
    const minute = Math.floor(this.now() / 60_000);
    if (minute !== this.minute) this.forgetBefore(minute);
    const key = `${userId}.${minute}`;
    let w = this.windows.get(key);
    if (!w) {
      w = { minute, known: undefined, waiting: [], busy: false };
      this.windows.set(key, w);
    }
    const window = w;
    return new Promise<RateDecision>((resolve) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        this.log.warn({ userId }, "rate limit not checked: the rate-limit bucket did not answer in time");
        resolve({ ok: true });
      }, this.timeoutMs);
      window.waiting.push((d) => {
        clearTimeout(timer);
        if (settled) return;
        settled = true;
        if (d instanceof Error) {
          this.log.warn({ err: d, userId }, "rate limit not checked");
          resolve({ ok: true });
        } else resolve(d);
      });
      if (!window.busy) void this.drain(key, window);
    });
  }

  /** Counts the waiting hits of one key, a batch per write, until none are left. */
  private async drain(key: string, w: Window): Promise<void> {
    w.busy = true;
    try {
      while (w.waiting.length > 0) {
        const batch = w.waiting.splice(0);
        try {
          const allowed = await this.count(key, w, batch.length);
          batch.forEach((settle, i) => settle(i < allowed ? { ok: true } : { ok: false, limit: this.limit() }));
        } catch (err) {
          // The window's count is unknown now; the next hit reads it again.
          w.known = undefined;
          for (const settle of batch) settle(err instanceof Error ? err : new Error(String(err)));
        }
      }
    } finally {
      w.busy = false;
    }
  }

  /** Adds up to `n` hits to the key's count without passing the limit; returns how many were added. */
  private async count(key: string, w: Window, n: number): Promise<number> {
    const limit = this.limit();
    for (let attempt = 0; attempt < 10; attempt++) {
      if (!w.known) {
        const e = await this.kv.get(key);
        // Missing or deleted: the next write must find it still so (revision 0 = "no entry yet").
        w.known = e && e.operation === "PUT" ? { count: Number(e.string()) || 0, revision: e.revision } : { count: 0, revision: e?.revision ?? 0 };
      }
      const { count, revision } = w.known;
      const allowed = Math.max(0, Math.min(n, limit - count));
      if (allowed === 0) return 0;
      try {
        // Expected last revision; 0 means "no entry yet".
        const next = await this.kv.put(key, String(count + allowed), { previousSeq: revision, timeout: this.timeoutMs });
        w.known = { count: count + allowed, revision: next };
        return allowed;
      } catch (err) {
        // Another replica counted first: read again.
        if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence) {
          w.known = undefined;
          continue;
        }
        throw err;
      }
    }
    throw new Error("too many concurrent updates of the rate-limit counter");
  }

  /** Drops what is remembered about past minutes (their keys age out of the bucket on their own). */
  private forgetBefore(minute: number): void {
    this.minute = minute;
    for (const [key, w] of this.windows) if (w.minute < minute && !w.busy) this.windows.delete(key);
  }
}
