import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BaseEnvSchema, connectNats, createLogger, loadConfig, openBucket, type KV, type NatsConnection } from "@iaas/runtime";
import { startNatsServer, type NatsServer } from "@iaas/testkit";
import { RateLimiter, type RateDecision } from "../src/stores/ratelimit.js";

/**
 * The rate limiter as two gateway replicas use it: each with its own NATS connection and its own
 * remembered counts, one bucket. Bursts from both at once must let exactly the limit through.
 */
describe("rate limit across gateway replicas", () => {
  let nats: NatsServer;
  const conns: NatsConnection[] = [];
  const log = createLogger("gateway-test", "silent");
  let minute = 5000;
  const now = () => minute * 60_000 + 1_000;

  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(async () => {
    for (const nc of conns) await nc.close();
    await nats?.dispose();
  });

  async function replica(limit: number): Promise<{ rate: RateLimiter; kv: KV }> {
    const nc = await connectNats(loadConfig(BaseEnvSchema, { NATS_URL: nats.url }), "gateway-test", log);
    conns.push(nc);
    const kv = await openBucket(nc, "rateLimits");
    return { rate: new RateLimiter(kv, () => limit, now, log, 5_000), kv };
  }

  const allowed = (ds: RateDecision[]) => ds.filter((d) => d.ok).length;

  it("lets exactly the limit through when two replicas take one user's burst at once, and counts it once in the bucket", async () => {
    minute += 1;
    const [a, b] = await Promise.all([replica(30), replica(30)]);
    const hits = Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? a : b).rate.hit("U0BURST"));
    const ds = await Promise.all(hits);
    expect(allowed(ds)).toBe(30);
    expect(ds.filter((d) => !d.ok)).toEqual(Array.from({ length: 20 }, () => ({ ok: false, limit: 30 })));
    expect((await a.kv.get(`U0BURST.${minute}`))?.string()).toBe("30");
    // Each replica now remembers a full count; both still refuse, and another user is not affected.
    expect(await a.rate.hit("U0BURST")).toEqual({ ok: false, limit: 30 });
    expect(await b.rate.hit("U0BURST")).toEqual({ ok: false, limit: 30 });
    expect(await b.rate.hit("U0OTHER")).toEqual({ ok: true });
  });

  it("a replica whose remembered count is stale reads the bucket again and does not overspend", async () => {
    minute += 1;
    const [a, b] = await Promise.all([replica(5), replica(5)]);
    // a remembers 1; then b counts 3 more; a's next write is refused as stale and it reads 4.
    expect(await a.rate.hit("U0STALE")).toEqual({ ok: true });
    for (let i = 0; i < 3; i++) expect(await b.rate.hit("U0STALE")).toEqual({ ok: true });
    const ds = await Promise.all([a.rate.hit("U0STALE"), a.rate.hit("U0STALE"), a.rate.hit("U0STALE")]);
    expect(allowed(ds)).toBe(1);
    expect((await a.kv.get(`U0STALE.${minute}`))?.string()).toBe("5");
  });

  it("starts again at the next minute", async () => {
    minute += 1;
    const { rate } = await replica(2);
    expect(allowed(await Promise.all([rate.hit("U0NEXT"), rate.hit("U0NEXT"), rate.hit("U0NEXT")]))).toBe(2);
    minute += 1;
    expect(await rate.hit("U0NEXT")).toEqual({ ok: true });
  });
});
