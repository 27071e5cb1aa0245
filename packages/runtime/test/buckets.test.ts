/**
 * Buckets and streams have no direct get: its answer is the stored message itself, on whatever
 * reply subject the asker chose. New ones are made without it, the admin's bootstrap turns it off
 * on old ones, and reads (get, the key listing kvKeys) work through message gets.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Buckets, Streams } from "@iaas/contracts";
import { startNatsServer, type NatsServer } from "@iaas/testkit";
import { createLogger, disableDirectGet, ensureStreams, kvKeys, openBucket } from "../src/mod.js";

const log = createLogger("buckets-test", "silent");
let server: NatsServer;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
});

afterAll(async () => {
  await nc?.close();
  await server?.dispose();
});

describe("no direct get", () => {
  it("new streams and buckets are made without it; reads still work", async () => {
    const jsm = await jetstreamManager(nc);
    await ensureStreams(jsm, ["audit"], log);
    expect((await jsm.streams.info(Streams.audit.name)).config.allow_direct).toBe(false);
    const kv = await openBucket(nc, "remediation");
    expect((await jsm.streams.info(`KV_${Buckets.remediation.name}`)).config.allow_direct).toBe(false);
    await kv.put("pending.cpu.vm-1", '{"a":1}');
    expect((await kv.get("pending.cpu.vm-1"))?.string()).toBe('{"a":1}');
  });

  it("disableDirectGet turns it off on a bucket an older version made, and changes nothing else", async () => {
    const jsm = await jetstreamManager(nc);
    await new Kvm(nc).create("old_bucket", { history: 3, allow_direct: true });
    const before = (await jsm.streams.info("KV_old_bucket")).config;
    expect(before.allow_direct).toBe(true);
    expect(await disableDirectGet(jsm, "KV_old_bucket", log)).toBe(true);
    const after = (await jsm.streams.info("KV_old_bucket")).config;
    expect(after).toEqual({ ...before, allow_direct: false, mirror_direct: false });
    expect(await disableDirectGet(jsm, "KV_old_bucket", log)).toBe(false);
  });

  it("kvKeys lists the live keys under a filter, without a consumer", async () => {
    const jsm = await jetstreamManager(nc);
    const kv = await openBucket(nc, "remediation");
    await kv.put("pending.cpu.vm-2", "{}");
    await kv.put("pending.memory.vm-2", "{}");
    await kv.put("pending.memory.vm-2", "{}");
    await kv.put("brake.x", "{}");
    await kv.put("pending.cpu.vm-3", "{}");
    await kv.delete("pending.cpu.vm-3");
    const consumers = (await jsm.consumers.list(`KV_${Buckets.remediation.name}`).next()).length;
    expect((await kvKeys(kv, "pending.>")).sort()).toEqual(["pending.cpu.vm-1", "pending.cpu.vm-2", "pending.memory.vm-2"]);
    expect(await kvKeys(kv, "nothing.>")).toEqual([]);
    expect((await jsm.consumers.list(`KV_${Buckets.remediation.name}`).next()).length).toBe(consumers);
  });
});
