import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Buckets, IaasError, type Usage } from "@iaas/contracts";
import { startNatsServer, type NatsServer } from "@iaas/testkit";
import { QuotaEntrySchema, QuotaReservations, createLogger, openBucket, quotaKeysOf, type KV } from "@iaas/runtime";

const log = createLogger("test", "silent");
const ONE_VM: Usage = { vms: 1, cpu: 2, memoryGB: 4, diskGB: 20 };
const MINUTE = 60_000;

/** A check as the services make it: what exists (here a number the test controls) + held + request against a VM limit. */
function vmLimit(limit: number, existing: () => number, calls?: { key: string; held: Usage }[]) {
  return async (key: string, held: Usage) => {
    calls?.push({ key, held });
    // A read of the usage takes a while (a NATS round trip to the proxy): long enough for others to interleave.
    await sleep(Math.random() * 8);
    if (existing() + held.vms + 1 > limit) throw new IaasError("IAAS_QUOTA_EXCEEDED", `over: ${existing()} + ${held.vms} + 1 > ${limit}`);
  };
}

describe("quota reservations", () => {
  let server: NatsServer;
  const conns: NatsConnection[] = [];
  const kvs: KV[] = [];
  let n = 0;
  const nextId = () => `req-${++n}-${Math.random().toString(36).slice(2, 8)}`;
  const keyOf = () => `user.U${(++n).toString().padStart(6, "0")}`;

  beforeAll(async () => {
    server = await startNatsServer();
    for (let i = 0; i < 4; i++) {
      const nc = await connect({ servers: server.url });
      conns.push(nc);
      kvs.push(await openBucket(nc, "quotas"));
    }
  });
  afterAll(async () => {
    for (const nc of conns) await nc.close();
    await server?.dispose();
  });
  let q: QuotaReservations;
  beforeEach(() => {
    q = new QuotaReservations(kvs[0]!, { log });
  });

  const entryOf = async (key: string) => {
    const e = await kvs[0]!.get(key);
    return e && e.length ? QuotaEntrySchema.parse(e.json()) : undefined;
  };

  it("never lets concurrent reserves on one key, from several connections, go over the limit", async () => {
    const key = keyOf();
    const stores = kvs.map((kv) => new QuotaReservations(kv, { log }));
    const ids = Array.from({ length: 16 }, nextId);
    const outcomes = await Promise.allSettled(ids.map((commandId, i) => stores[i % stores.length]!.reserve({ commandId, keys: [key], request: ONE_VM, ttlMs: MINUTE, check: vmLimit(3, () => 0) })));
    const won = ids.filter((_, i) => outcomes[i]!.status === "fulfilled");
    expect(won).toHaveLength(3);
    for (const o of outcomes) if (o.status === "rejected") expect((o.reason as IaasError).code).toBe("IAAS_QUOTA_EXCEEDED");
    expect(Object.keys((await entryOf(key))!.reservations).sort()).toEqual([...won].sort());
    expect(await q.held(key)).toEqual({ usage: { vms: 3, cpu: 6, memoryGB: 12, diskGB: 60 }, count: 3 });
  });

  it("counts a release that lands between its read and its write: the write fails and the check runs again", async () => {
    const key = keyOf();
    const other = new QuotaReservations(kvs[1]!, { log });
    const b = nextId();
    await other.reserve({ commandId: b, keys: [key], request: ONE_VM, ttlMs: MINUTE, check: vmLimit(2, () => 0) });
    // Limit 2: B holds one, nothing exists yet. While A checks (having read B's reservation and a
    // usage of 0), B's VM is made and B releases. A's write must not land on the old revision.
    let existing = 0;
    const calls: { key: string; held: Usage }[] = [];
    const check = async (k: string, held: Usage) => {
      calls.push({ key: k, held });
      const seen = existing;
      if (calls.length === 1) {
        existing = 1;
        await other.release(b, [key]);
      }
      if (seen + held.vms + 1 > 2) throw new IaasError("IAAS_QUOTA_EXCEEDED", "over");
    };
    await q.reserve({ commandId: nextId(), keys: [key], request: ONE_VM, ttlMs: MINUTE, check });
    expect(calls.map((c) => c.held.vms)).toEqual([1, 0]);
    expect((await q.held(key)).count).toBe(1);
  });

  it("release frees the share, is safe to repeat, and leaves other reservations alone", async () => {
    const key = keyOf();
    const [a, b, c] = [nextId(), nextId(), nextId()];
    await q.reserve({ commandId: a, keys: [key], request: ONE_VM, ttlMs: MINUTE, check: vmLimit(2, () => 0) });
    await q.reserve({ commandId: b, keys: [key], request: ONE_VM, ttlMs: MINUTE, check: vmLimit(2, () => 0) });
    await expect(q.reserve({ commandId: c, keys: [key], request: ONE_VM, ttlMs: MINUTE, check: vmLimit(2, () => 0) })).rejects.toMatchObject({ code: "IAAS_QUOTA_EXCEEDED" });
    await q.release(a, [key]);
    await q.release(a, [key]);
    await q.release(a, [keyOf()]);
    expect(Object.keys((await entryOf(key))!.reservations)).toEqual([b]);
    await q.reserve({ commandId: c, keys: [key], request: ONE_VM, ttlMs: MINUTE, check: vmLimit(2, () => 0) });
    expect((await q.held(key)).count).toBe(2);
  });

  it("is idempotent by command id: a second reserve neither checks nor counts again, and only moves the expiry later", async () => {
    const key = keyOf();
    const id = nextId();
    const calls: { key: string; held: Usage }[] = [];
    await q.reserve({ commandId: id, keys: [key], request: ONE_VM, ttlMs: MINUTE, check: vmLimit(1, () => 0, calls) });
    const before = (await entryOf(key))!.reservations[id]!.expiresAt;
    // A limit that is full (what exists now counts the VM): a new check would refuse.
    await q.reserve({ commandId: id, keys: [key], request: ONE_VM, ttlMs: MINUTE, check: vmLimit(1, () => 1, calls) });
    await q.reserve({ commandId: id, keys: [key], request: ONE_VM, ttlMs: 10 * MINUTE, check: vmLimit(1, () => 1, calls) });
    expect(calls).toHaveLength(1);
    const after = (await entryOf(key))!.reservations;
    expect(Object.keys(after)).toEqual([id]);
    expect(Date.parse(after[id]!.expiresAt)).toBeGreaterThan(Date.parse(before) + 8 * MINUTE);
    expect((await q.held(key)).usage.vms).toBe(1);
  });

  it("ignores expired reservations and removes them on the next write", async () => {
    const key = keyOf();
    let now = Date.parse("2026-01-01T00:00:00Z");
    const clocked = new QuotaReservations(kvs[2]!, { log, now: () => now });
    const old = nextId();
    await clocked.reserve({ commandId: old, keys: [key], request: ONE_VM, ttlMs: MINUTE, check: vmLimit(1, () => 0) });
    await expect(clocked.reserve({ commandId: nextId(), keys: [key], request: ONE_VM, ttlMs: MINUTE, check: vmLimit(1, () => 0) })).rejects.toMatchObject({ code: "IAAS_QUOTA_EXCEEDED" });
    now += MINUTE + 1;
    expect(await clocked.held(key)).toEqual({ usage: { vms: 0, cpu: 0, memoryGB: 0, diskGB: 0 }, count: 0 });
    const fresh = nextId();
    await clocked.reserve({ commandId: fresh, keys: [key], request: ONE_VM, ttlMs: MINUTE, check: vmLimit(1, () => 0) });
    expect(Object.keys((await entryOf(key))!.reservations)).toEqual([fresh]);
  });

  it("takes the user key before the team key, and gives the user's share back when the team is over", async () => {
    const [user, team] = quotaKeysOf(`U${(++n).toString().padStart(6, "0")}`, `team-${n}`);
    expect(user).toMatch(/^user\.U/);
    expect(team).toMatch(/^team\.team-/);
    const order: string[] = [];
    const check = async (key: string) => {
      order.push(key);
      if (key === team) throw new IaasError("IAAS_QUOTA_EXCEEDED", "the team is over");
    };
    await expect(q.reserve({ commandId: nextId(), keys: [user!, team!], request: ONE_VM, ttlMs: MINUTE, check })).rejects.toMatchObject({ code: "IAAS_QUOTA_EXCEEDED" });
    expect(order).toEqual([user, team]);
    expect((await q.held(user!)).count).toBe(0);
    expect((await q.held(team!)).count).toBe(0);
  });

  it("gives up with a retryable error when the key keeps changing", async () => {
    const key = keyOf();
    const busy = new QuotaReservations(kvs[3]!, { log, maxAttempts: 3 });
    const other = new QuotaReservations(kvs[1]!, { log });
    // Every check lets another request write the key first, so every compare-and-set loses.
    const check = async () => {
      await other.reserve({ commandId: nextId(), keys: [key], request: { vms: 0, cpu: 0, memoryGB: 0, diskGB: 0 }, ttlMs: MINUTE, check: () => undefined });
    };
    const err = await busy.reserve({ commandId: nextId(), keys: [key], request: ONE_VM, ttlMs: MINUTE, check }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "IAAS_UNAVAILABLE", retryable: true });
    expect((err as Error).message).toMatchInlineSnapshot(`"Too many requests are using the same quota at this moment; nothing was done. Try again in a moment."`);
  });

  it("replaces an unreadable entry by compare-and-set, as one with no reservations", async () => {
    const key = keyOf();
    await kvs[0]!.put(key, "not json");
    await q.reserve({ commandId: nextId(), keys: [key], request: ONE_VM, ttlMs: MINUTE, check: vmLimit(1, () => 0) });
    expect((await q.held(key)).count).toBe(1);
    expect(Buckets.quotas.name).toBe("iaas_quotas");
  });

  it("rides out NATS going away mid-reserve (a node lost, a leader elected): tried again, reserved once; gives up after retryForMs", async () => {
    // A server of its own, stopped and started again on its port with its store, under a connection that reconnects.
    const own = await startNatsServer();
    const nc = await connect({ servers: own.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    try {
      const kv = await openBucket(nc, "quotas");
      const key = keyOf();
      const commandId = nextId();
      const patient = new QuotaReservations(kv, { log, timeoutMs: 500, retryForMs: 20_000 });
      await own.stop();
      const reserving = patient.reserve({ commandId, keys: [key], request: ONE_VM, ttlMs: MINUTE, check: vmLimit(1, () => 0) });
      await sleep(1_500);
      await own.restart();
      await reserving;
      expect((await patient.held(key)).count).toBe(1);
      expect(Object.keys(QuotaEntrySchema.parse((await kv.get(key))!.json()).reservations)).toEqual([commandId]);

      // Away for longer than it waits: a retryable refusal, nothing held.
      const hasty = new QuotaReservations(kv, { log, timeoutMs: 300, retryForMs: 1_000 });
      await own.stop();
      const err = await hasty.reserve({ commandId: nextId(), keys: [keyOf()], request: ONE_VM, ttlMs: MINUTE, check: vmLimit(1, () => 0) }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "IAAS_UNAVAILABLE", retryable: true });
    } finally {
      await nc.close().catch(() => undefined);
      await own.dispose();
    }
  });
});
