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
import { buildVmLifecycleService } from "./build.js";

const EnvSchema = BaseEnvSchema.extend({
  HEALTH_PORT: PortSchema.default(9103),
  VM_LIFECYCLE_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  /** One vCenter task (a clone of a big VM takes minutes); under the consumer's 15-minute ack wait, kept alive meanwhile. */
  VM_LIFECYCLE_TASK_TIMEOUT_MS: z.coerce.number().int().min(1000).max(3_600_000).default(600_000),
  VM_LIFECYCLE_LOOKUP_TIMEOUT_MS: z.coerce.number().int().min(500).max(120_000).default(15_000),
  IAAS_POLICY: z.string().optional(),
  IAAS_ADMINS: z.string().optional(),
}).superRefine(natsAuthRefinement);

let log: Logger | undefined;
try {
  const env = loadConfig(EnvSchema);
  log = createLogger(ServiceNames.vmLifecycle, env.LOG_LEVEL);
  // A policy that does not load stops the service here, with a line naming the field.
  const policy = policyFromEnv();
  log.info({ policy: policy.source }, "policy loaded");
  const nc = await connectNats(env, ServiceNames.vmLifecycle, log);
  const jet = await jetstreamFor(nc);
  await ensureStreams(jet.jsm, ["commands", "results", "audit", "deadLetters"], log);
  await ensureConsumer(jet.jsm, "vmLifecycle", { ackWaitMs: env.CONSUMER_ACK_WAIT_MS, maxDeliver: env.CONSUMER_MAX_DELIVER });
  const state = await openBucket(nc, "commandState");
  const metrics = createMetrics(ServiceNames.vmLifecycle);
  const micro = await addMicroService(nc, ServiceNames.vmLifecycle, "0.1.0", "Creates, clones, deploys, resizes and deletes VMs");
  const service = buildVmLifecycleService({
    nc,
    jet,
    state,
    policy,
    log,
    metrics,
    config: { taskTimeoutMs: env.VM_LIFECYCLE_TASK_TIMEOUT_MS, lookupTimeoutMs: env.VM_LIFECYCLE_LOOKUP_TIMEOUT_MS, concurrency: env.VM_LIFECYCLE_CONCURRENCY },
  });
  await service.start();
  const health = await startHealthServer({ host: env.HEALTH_HOST, port: env.HEALTH_PORT, checks: { nats: () => isNatsConnected(nc) }, registry: metrics.registry, log });
  log.info({ health: `http://${env.HEALTH_HOST}:${health.port}` }, "vm-lifecycle service ready");
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

/** The policy, or a one-line configuration error naming the file and the field. */
function policyFromEnv(): Policy {
  try {
    return loadPolicy({ env: process.env });
  } catch (err) {
    if (err instanceof PolicyError) throw new ConfigError(["IAAS_POLICY"], err.message);
    throw err;
  }
}
