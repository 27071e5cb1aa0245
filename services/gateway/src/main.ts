import { ServiceNames } from "@iaas/contracts";
import { PolicyError, loadPolicy } from "@iaas/policy";
import { ConfigError, addMicroService, connectNats, createLogger, createMetrics, fatal, loadConfig, onShutdown, startHealthServer, type Logger } from "@iaas/runtime";
import { buildGateway } from "./build.js";
import { GatewayEnvSchema } from "./config.js";
import { ensureGatewayResources } from "./resources.js";

const VERSION = "0.1.0";

async function main(log: Logger): Promise<void> {
  const config = loadConfig(GatewayEnvSchema);
  log.level = config.LOG_LEVEL;
  // A policy that does not load stops the gateway here, with one line naming the file and field.
  let policy;
  try {
    policy = loadPolicy({ env: { IAAS_POLICY: config.IAAS_POLICY, IAAS_ADMINS: config.IAAS_ADMINS.join(",") } });
  } catch (err) {
    if (err instanceof PolicyError) throw new ConfigError(["IAAS_POLICY"], err.message);
    throw err;
  }
  log.info({ policy: policy.source }, "policy loaded");
  // Every Slack request makes a few NATS requests; their per-request stack capture was ~10% of the gateway's CPU.
  const nc = await connectNats(config, ServiceNames.gateway, log, { noAsyncTraces: true });

  // /readyz follows the NATS connection (without it the gateway can only answer "unavailable") and,
  // over Socket Mode, the connection to Slack.
  let natsUp = true;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") natsUp = false;
      else if (s.type === "reconnect") natsUp = true;
    }
  })();

  await ensureGatewayResources(nc, log);
  const service = await addMicroService(nc, ServiceNames.gateway, VERSION, "Slack gateway: /iaas commands in, results out");
  const metrics = createMetrics(ServiceNames.gateway);
  const gateway = buildGateway({ nc, config, log, metrics, policy });
  const health = await startHealthServer({
    host: config.HEALTH_HOST,
    port: config.HEALTH_PORT,
    checks: {
      nats: () => natsUp && !nc.isClosed(),
      // Over Socket Mode Slack reaches the gateway only through its own connection: none, not ready.
      ...(config.SLACK_APP_TOKEN !== undefined ? { slack: () => gateway.slackReady() } : {}),
    },
    registry: metrics.registry,
    log,
  });
  const { port } = await gateway.start();
  log.info({ slackPort: port, healthPort: health.port, socketMode: config.SLACK_APP_TOKEN !== undefined }, "gateway started");

  onShutdown(log, async () => {
    await gateway.stop();
    await service.stop();
    await health.close();
    await nc.drain();
  });
}

// The level from the environment is applied once the config has been validated.
const log = createLogger(ServiceNames.gateway, "info");
main(log).catch((err: unknown) => fatal(log, err));
