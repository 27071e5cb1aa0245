import { ServiceNames } from "@iaas/contracts";
import { PolicyError, loadPolicy, type Policy } from "@iaas/policy";
import {
  ConfigError,
  connectNats,
  createLogger,
  createMetrics,
  ensureConsumer,
  ensureStreams,
  fatal,
  isNatsConnected,
  jetstreamFor,
  loadConfig,
  onShutdown,
  openBucket,
  startHealthServer,
  type Logger,
} from "@iaas/runtime";
import { buildRemediation } from "./build.js";
import { RemediationEnvSchema, remediationConfigFromEnv } from "./config.js";

let log: Logger | undefined;
try {
  const env = loadConfig(RemediationEnvSchema);
  log = createLogger(ServiceNames.remediation, env.LOG_LEVEL);
  const policy = policyFromEnv();
  log.info({ policy: policy.source, dryRun: policy.remediation.dryRun, enabled: policy.remediation.enabled }, "policy loaded");
  const nc = await connectNats(env, ServiceNames.remediation, log);
  const jet = await jetstreamFor(nc);
  await ensureStreams(jet.jsm, ["events", "audit"], log);
  await ensureConsumer(jet.jsm, "remediation");
  const state = await openBucket(nc, "remediation");
  const metrics = createMetrics(ServiceNames.remediation);
  const service = buildRemediation({ nc, jet, state, policy, log, metrics, config: remediationConfigFromEnv(env) });
  await service.start();
  const health = await startHealthServer({ host: env.HEALTH_HOST, port: env.HEALTH_PORT, checks: { nats: () => isNatsConnected(nc) }, registry: metrics.registry, log });
  log.info({ health: `http://${env.HEALTH_HOST}:${health.port}` }, "remediation ready");
  const l = log;
  onShutdown(l, async () => {
    await service.stop();
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
