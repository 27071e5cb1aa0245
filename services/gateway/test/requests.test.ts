import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BaseEnvSchema, connectNats, createLogger, loadConfig, openBucket, type NatsConnection } from "@iaas/runtime";
import { startNatsServer, type NatsServer } from "@iaas/testkit";
import { RESPONSE_URL_MAX_POSTS, RequestStore, type RequestRecord } from "../src/stores/requests.js";

/**
 * The reply-target store as two relaying replicas use it: a record read by one and changed by the
 * other since. Writing over a stale revision must be refused and read again, never overspend the
 * response_url's posts or lose the delivered mark.
 */
describe("request records across replicas", () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let a: RequestStore;
  let b: RequestStore;
  let n = 0;
  const log = createLogger("gateway-test", "silent");

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connectNats(loadConfig(BaseEnvSchema, { NATS_URL: nats.url }), "gateway-test", log);
    const kv = await openBucket(nc, "requests");
    a = new RequestStore(kv, log);
    b = new RequestStore(kv, log);
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.dispose();
  });

  async function fresh(): Promise<string> {
    const id = `r-test${String(n++).padStart(20, "0")}`;
    const rec: RequestRecord = { id, responseUrl: "https://hooks.slack.com/commands/T0/1/x", teamId: "T0001", channelId: "C0001", userId: "U0001", text: "power off web-01", createdAt: new Date().toISOString(), posts: 0, finalDelivered: false };
    expect(await a.create(rec, 1_000)).toBe(true);
    return id;
  }

  it("takes a post over the revision it was given, and over a stale one reads again", async () => {
    const id = await fresh();
    const seen = (await a.get(id))!;
    const first = await a.takePost(id, "progress", seen);
    expect(first.ok && first.stored.record.posts).toBe(1);
    // b changes the record; a still holds `first` and must not write over b's post.
    expect((await b.takePost(id, "progress")).ok).toBe(true);
    const stale = await a.takePost(id, "progress", first.ok ? first.stored : undefined);
    expect(stale.ok && stale.stored.record.posts).toBe(3);
    expect((await a.get(id))!.record.posts).toBe(3);
  });

  it("never spends more than the URL allows when both replicas hold the same revision", async () => {
    const id = await fresh();
    const seen = (await a.get(id))!;
    const slots = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).takePost(id, "final", seen)));
    expect(slots.filter((s) => s.ok)).toHaveLength(RESPONSE_URL_MAX_POSTS);
    expect(slots.filter((s) => !s.ok)).toEqual(Array.from({ length: 8 - RESPONSE_URL_MAX_POSTS }, () => ({ ok: false, reason: "exhausted" })));
    expect((await a.get(id))!.record.posts).toBe(RESPONSE_URL_MAX_POSTS);
  });

  it("marks the final result delivered over a stale revision without undoing the other replica's post", async () => {
    const id = await fresh();
    const seen = (await a.get(id))!;
    expect((await b.takePost(id, "final")).ok).toBe(true);
    await a.markFinalDelivered(id, seen);
    expect((await a.get(id))!.record).toMatchObject({ posts: 1, finalDelivered: true });
  });
});
