import { jetstream, jetstreamManager, AckPolicy, DeliverPolicy, RetentionPolicy, StorageType, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { headers as natsHeaders, type NatsConnection, type MsgHdrs } from "@nats-io/transport-node";
import type { z } from "zod";
import { Streams, Buckets, Consumers, IaasError } from "@iaas/contracts";
import type { Logger } from "./log.js";

export type { JetStreamClient, JetStreamManager, KV };

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeJson(value: unknown): Uint8Array {
  return enc.encode(JSON.stringify(value));
}

/** JSON.parse of a payload; a SyntaxError becomes IAAS_BAD_REQUEST. */
export function decodeJson(data: Uint8Array): unknown {
  try {
    return JSON.parse(dec.decode(data));
  } catch (err) {
    throw new IaasError("IAAS_BAD_REQUEST", "the message is not valid JSON", { cause: err });
  }
}

export function makeHeaders(values: Record<string, string | undefined>): MsgHdrs {
  const h = natsHeaders();
  for (const [k, v] of Object.entries(values)) if (v !== undefined) h.set(k, v);
  return h;
}

/**
 * Creates the product's streams if they are missing. An existing stream is left as it is: an
 * operator may have tuned its limits or replicas. Only features nats-server 2.9 has are used.
 */
export async function ensureStreams(jsm: JetStreamManager, names: (keyof typeof Streams)[], log: Logger, replicas = 1): Promise<void> {
  for (const key of names) {
    const def = Streams[key];
    try {
      await jsm.streams.info(def.name);
      continue;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    try {
      await jsm.streams.add({
        name: def.name,
        subjects: [...def.subjects],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        duplicate_window: def.duplicateWindowNs,
        max_age: def.maxAgeNs,
        num_replicas: replicas,
        // No direct get: its answer is the stored message, raw, on the reply subject the asker chose.
        allow_direct: false,
      });
      log.info({ stream: def.name }, "created stream");
    } catch (err) {
      // Another instance created it between our info and add.
      if (String((err as Error).message).includes("already in use")) continue;
      throw missingUnderLeastPrivilege(err, `stream ${def.name}`);
    }
  }
}

/** Operator overrides for a consumer; when given, an existing consumer is updated to match. */
export interface ConsumerOverrides {
  /** How long a delivered message may stay un-acked before JetStream redelivers it. */
  ackWaitMs?: number | undefined;
  /** Deliveries before a command is given up on (dead letter). */
  maxDeliver?: number | undefined;
}

export async function ensureConsumer(jsm: JetStreamManager, key: keyof typeof Consumers, overrides: ConsumerOverrides = {}): Promise<void> {
  const def = Consumers[key];
  const ackWait = overrides.ackWaitMs !== undefined ? overrides.ackWaitMs * 1e6 : def.ackWaitNs;
  const maxDeliver = overrides.maxDeliver ?? def.maxDeliver;
  try {
    const info = await jsm.consumers.info(def.stream, def.durable);
    const wanted = (overrides.ackWaitMs !== undefined && info.config.ack_wait !== ackWait) || (overrides.maxDeliver !== undefined && info.config.max_deliver !== maxDeliver);
    if (wanted) await jsm.consumers.update(def.stream, def.durable, { ack_wait: ackWait, max_deliver: maxDeliver });
    return;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  await jsm.consumers
    .add(def.stream, {
    durable_name: def.durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    filter_subject: def.filter,
    max_deliver: maxDeliver,
    ack_wait: ackWait,
  })
    .catch((err: unknown) => {
      throw missingUnderLeastPrivilege(err, `consumer ${def.stream}/${def.durable}`);
    });
}

/**
 * Under the least-privilege NATS config (deploy/nats) services only look JetStream up; the admin's
 * bootstrap creates it. A denied create then means the bootstrap has not run: say that, not the
 * raw permission error.
 */
function missingUnderLeastPrivilege(err: unknown, what: string): unknown {
  if (!/permissions? violation/i.test(String((err as Error)?.message)) && (err as Error)?.name !== "PermissionViolationError") return err;
  return new Error(`JetStream ${what} does not exist and this NATS user may not create it: run the admin bootstrap first (node deploy/nats/bootstrap.mjs, see docs/operations.md)`, { cause: err });
}

/**
 * A key's value parsed with `schema`, with its revision (for compare-and-set). Missing, deleted
 * or unparseable entries are `undefined`; an unparseable one is logged and never acted on: another
 * version or another writer put it there.
 */
export async function readKvJson<T>(kv: KV, key: string, schema: z.ZodType<T>, log: Logger, what: string): Promise<{ value: T; revision: number } | undefined> {
  const e = await kv.get(key);
  if (!e || e.operation !== "PUT" || e.length === 0) return undefined;
  let raw: unknown;
  try {
    raw = e.json();
  } catch {
    raw = undefined;
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    log.warn({ key }, `ignoring an unreadable ${what}`);
    return undefined;
  }
  return { value: r.data, revision: e.revision };
}

/**
 * Turns direct get off on an existing stream (a bucket's stream too), the one setting changed on a
 * stream that is otherwise left as it is: a direct get answers with the stored message itself on
 * whatever reply subject the asker chose, a message get in a JSON wrapper. The admin's bootstrap
 * runs this on every product stream and bucket, so an upgrade needs no other step. Returns whether
 * it changed anything.
 */
export async function disableDirectGet(jsm: JetStreamManager, stream: string, log: Logger): Promise<boolean> {
  const info = await jsm.streams.info(stream);
  if (!info.config.allow_direct && !info.config.mirror_direct) return false;
  await jsm.streams.update(stream, { ...info.config, allow_direct: false, mirror_direct: false });
  log.info({ stream }, "turned direct get off");
  return true;
}

/**
 * The keys of a bucket under `filter` (`pending.>`), read with message gets (`next_by_subj`) rather
 * than kv.keys(): that one opens an ordered push consumer, whose deliveries and flow control would
 * have to cross from the JetStream account into the services' one, and no service user may create
 * consumers. Deleted and purged keys are left out. Reads the whole filtered key space, so it is for
 * small buckets.
 */
export async function kvKeys(kv: KV, filter: string): Promise<string[]> {
  // The bucket's own manager, stream name and subject prefix (public fields of @nats-io/kv's Bucket).
  const b = kv as unknown as { jsm?: JetStreamManager; stream?: unknown; prefix?: unknown };
  // Checked, not assumed: a @nats-io/kv upgrade that renames them fails here, by name, not later.
  if (!b.jsm || typeof b.stream !== "string" || typeof b.prefix !== "string") throw new TypeError("kvKeys: this KV has no jsm, stream and prefix (a @nats-io/kv Bucket has)");
  const { jsm, stream, prefix } = b as { jsm: JetStreamManager; stream: string; prefix: string };
  const keys: string[] = [];
  for (let seq = 1; ; ) {
    let m;
    try {
      m = await jsm.streams.getMessage(stream, { seq, next_by_subj: `${prefix}.${filter}` } as unknown as { seq: number });
    } catch (err) {
      if (isNotFound(err)) break;
      throw err;
    }
    if (!m) break;
    const op = m.header?.get("KV-Operation");
    if (op !== "DEL" && op !== "PURGE") keys.push(m.subject.slice(prefix.length + 1));
    seq = m.seq + 1;
  }
  return keys;
}

export async function openBucket(nc: NatsConnection, key: keyof typeof Buckets, replicas = 1): Promise<KV> {
  const def = Buckets[key];
  // allow_direct false: reads are message gets (see disableDirectGet), on a new bucket and an old one.
  return new Kvm(nc).create(def.name, { ttl: def.ttlMs, history: 1, replicas, allow_direct: false }).catch((err: unknown) => {
    throw missingUnderLeastPrivilege(err, `bucket ${def.name}`);
  });
}

function isNotFound(err: unknown): boolean {
  const e = err as { code?: string | number; api_error?: { err_code?: number }; message?: string };
  return e?.api_error?.err_code === 10059 || e?.api_error?.err_code === 10014 || /not found/i.test(String(e?.message));
}

export interface Jet {
  js: JetStreamClient;
  jsm: JetStreamManager;
}

export async function jetstreamFor(nc: NatsConnection, timeoutMs = 10_000): Promise<Jet> {
  return { js: jetstream(nc, { timeout: timeoutMs }), jsm: await jetstreamManager(nc, { timeout: timeoutMs }) };
}
