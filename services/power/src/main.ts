import { z } from "zod";
import { ServiceNames } from "@iaas/contracts";
import { PolicyError, loadPolicy, type Policy } from "@iaas/policy";
import {
  BaseEnvSchema,
  ConfigError,
  PortSchema,
  addMicroService,
  connectNats,
  createLogger,
  createMetrics,
  ensureConsumer,
  ensureStreams,
  fatal,
  isNatsConnected,
  jetstreamFor,
  loadConfig,
  natsAuthRefinement,
  onShutdown,
  openBucket,
  startHealthServer,
  type Logger,
} from "@iaas/runtime";
import { buildPowerService } from "./build.js";

const EnvSchema = BaseEnvSchema.extend({
  HEALTH_PORT: PortSchema.default(9102),
  POWER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(8),
  POWER_TIMEOUT_MS: z.coerce.number().int().min(1000).max(3_600_000).default(120_000),
}).superRefine(natsAuthRefinement);

let log: Logger | undefined;
try {
  const env = loadConfig(EnvSchema);
  log = createLogger(ServiceNames.power, env.LOG_LEVEL);
  const policy = policyFromEnv();
  log.info({ policy: policy.source }, "policy loaded");
  const nc = await connectNats(env, ServiceNames.power, log);
  const jet = await jetstreamFor(nc);
  await ensureStreams(jet.jsm, ["commands", "results", "audit", "deadLetters"], log);
  await ensureConsumer(jet.jsm, "power", { ackWaitMs: env.CONSUMER_ACK_WAIT_MS, maxDeliver: env.CONSUMER_MAX_DELIVER });
  const state = await openBucket(nc, "commandState");
  const metrics = createMetrics(ServiceNames.power);
  const micro = await addMicroService(nc, ServiceNames.power, "0.1.0", "Powers VMs on, off, reset, suspend, shutdown and reboot");
  const service = buildPowerService({ nc, jet, state, policy, log, metrics, config: { proxyTimeoutMs: env.POWER_TIMEOUT_MS, concurrency: env.POWER_CONCURRENCY } });
  await service.start();
  const health = await startHealthServer({ host: env.HEALTH_HOST, port: env.HEALTH_PORT, checks: { nats: () => isNatsConnected(nc) }, registry: metrics.registry, log });
  log.info({ health: `http://${env.HEALTH_HOST}:${health.port}` }, "power service ready");
  const l = log;
  onShutdown(l, async () => {
    await service.stop();
    await micro.stop();
    await health.close();
    await nc.drain();
  });
} catch (err) {
  fatal(log, err);
}

/** The policy (IAAS_POLICY, IAAS_ADMINS), or a one-line configuration error naming the file and the field. */
function policyFromEnv(): Policy {
  try {
    return loadPolicy({ env: process.env });
  } catch (err) {
    if (err instanceof PolicyError) throw new ConfigError(["IAAS_POLICY"], err.message);
    throw err;
  }
}
