import { ServiceNames } from "@iaas/contracts";
import {
  connectNats,
  createLogger,
  createMetrics,
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
import { buildBridge } from "./build.js";
import { BridgeEnvSchema, bridgeConfigFromEnv } from "./config.js";
import { PollerEnvSchema, buildPoller, pollerConfigFromEnv } from "./poller.js";

let log: Logger | undefined;
try {
  const env = loadConfig(BridgeEnvSchema);
  const pollerEnv = loadConfig(PollerEnvSchema);
  log = createLogger(ServiceNames.vebaBridge, env.LOG_LEVEL);
  // nats.js captures a stack at every request for later errors: a tenth of the bridge's CPU per event.
  const nc = await connectNats(env, ServiceNames.vebaBridge, log, { noAsyncTraces: true });
  const jet = await jetstreamFor(nc);
  // The bridge only writes events: the one stream it needs.
  await ensureStreams(jet.jsm, ["events"], log);
  const metrics = createMetrics(ServiceNames.vebaBridge);
  const bridge = buildBridge({ nc, jet, log, metrics, config: bridgeConfigFromEnv(env) });
  await bridge.start();
  // For sites without VEBA: vCenter's events through vcenter-proxy, published the same way.
  const poller = pollerEnv.POLLER_ENABLED
    ? buildPoller({ nc, jet, checkpoints: await openBucket(nc, "eventPoller"), log: log.child({ part: "poller" }), metrics, config: pollerConfigFromEnv(pollerEnv, env.BRIDGE_PUBLISH_TIMEOUT_MS) })
    : undefined;
  poller?.start();
  const health = await startHealthServer({
    host: env.HEALTH_HOST,
    port: env.HEALTH_PORT,
    checks: { nats: () => isNatsConnected(nc), http: () => bridge.listening },
    registry: metrics.registry,
    log,
  });
  log.info({ health: `http://${env.HEALTH_HOST}:${health.port}` }, "veba-bridge ready");
  const l = log;
  onShutdown(l, async () => {
    await poller?.stop();
    await bridge.stop();
    await health.close();
    await nc.drain();
  });
} catch (err) {
  fatal(log, err);
}
