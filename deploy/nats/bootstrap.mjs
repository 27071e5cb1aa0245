#!/usr/bin/env node
// Creates the product's JetStream streams, durable consumers and KV buckets, as the NATS `admin`
// user. Under deploy/nats/nats-server.conf services may only look these up (`INFO`), never create
// or change them, so this runs once before them and again after an upgrade that adds one
// (docker compose: the `nats-bootstrap` service; Kubernetes: the `iaas-nats-bootstrap` Job).
// What exists is left as it is (an operator may have tuned limits or replicas), but for one setting:
// direct get is turned off on every product stream and bucket (allow_direct false), also on ones an
// older version made, since a direct get answers with a stored message, raw, on any reply subject.
//
//   NATS_URL=... NATS_USER=admin NATS_PASSWORD=... [NATS_REPLICAS=3] node deploy/nats/bootstrap.mjs
//
// It reuses runtime's ensureStreams / ensureConsumer / openBucket, so the stream settings are the
// ones services would have made themselves; the lists come from contracts' Streams, Consumers and
// Buckets, so a new entry there is created here without editing this file.

import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * @param {object} deps
 * @param {import("@nats-io/transport-node").NatsConnection} deps.nc connected as admin
 * @param {typeof import("../../packages/runtime/src/mod.ts")} deps.runtime
 * @param {typeof import("../../packages/contracts/src/mod.ts")} deps.contracts
 * @param {number} [deps.replicas] stream and bucket replicas (3 on a three-node cluster)
 * @param {import("../../packages/runtime/src/mod.ts").Logger} deps.log
 */
export async function bootstrap({ nc, runtime, contracts, replicas = 1, log }) {
  const jet = await runtime.jetstreamFor(nc);
  const streams = /** @type {(keyof typeof contracts.Streams)[]} */ (Object.keys(contracts.Streams));
  await runtime.ensureStreams(jet.jsm, streams, log, replicas);
  for (const key of /** @type {(keyof typeof contracts.Consumers)[]} */ (Object.keys(contracts.Consumers))) {
    await runtime.ensureConsumer(jet.jsm, key);
    log.info({ consumer: contracts.Consumers[key].durable, stream: contracts.Consumers[key].stream }, "consumer ready");
  }
  for (const key of /** @type {(keyof typeof contracts.Buckets)[]} */ (Object.keys(contracts.Buckets))) {
    await runtime.openBucket(nc, key, replicas);
    log.info({ bucket: contracts.Buckets[key].name }, "bucket ready");
  }
  const all = [...streams.map((s) => contracts.Streams[s].name), ...Object.values(contracts.Buckets).map((b) => `KV_${b.name}`)];
  for (const name of all) await runtime.disableDirectGet(jet.jsm, name, log);
  return {
    streams: streams.map((s) => contracts.Streams[s].name),
    consumers: Object.values(contracts.Consumers).map((c) => `${c.stream}/${c.durable}`),
    buckets: Object.values(contracts.Buckets).map((b) => b.name),
  };
}

async function main() {
  // Built output, so this runs in the container image as well as in a checkout after `tsc -b`.
  const runtime = await import("../../packages/runtime/dist/mod.js");
  const contracts = await import("../../packages/contracts/dist/mod.js");
  let log;
  try {
    const env = runtime.loadConfig(runtime.BaseEnvSchema.superRefine(runtime.natsAuthRefinement));
    const replicas = Number(process.env.NATS_REPLICAS || "1");
    if (![1, 3, 5].includes(replicas)) throw new runtime.ConfigError(["NATS_REPLICAS"], "invalid configuration: NATS_REPLICAS: must be 1, 3 or 5");
    log = runtime.createLogger("nats-bootstrap", env.LOG_LEVEL);
    const nc = await runtime.connectNats(env, "nats-bootstrap", log);
    const made = await bootstrap({ nc, runtime, contracts, replicas, log });
    log.info(made, "JetStream streams, consumers and buckets are in place");
    await nc.drain();
  } catch (err) {
    runtime.fatal(log, err);
  }
}

// Run only as a program, not when a test imports bootstrap(); realpath, since /app may be a link.
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
