import { ServiceNames } from "@iaas/contracts";
import { ensureStreams, loadConfig, openBucket, runService } from "@iaas/runtime";
import { BRIDGE_DESCRIPTION, VERSION, buildBridge } from "./build.js";
import { BridgeEnvSchema, bridgeConfigFromEnv } from "./config.js";
import { PollerEnvSchema, buildPoller, pollerConfigFromEnv } from "./poller.js";

await runService({
  name: ServiceNames.vebaBridge,
  version: VERSION,
  description: BRIDGE_DESCRIPTION,
  env: BridgeEnvSchema,
  // The poller's variables are checked before anything connects, like the bridge's own.
  prepare: () => loadConfig(PollerEnvSchema),
  async start({ env, prepared: pollerEnv, log, nc, jet, metrics, micro }) {
    // The bridge only writes events: the one stream it needs.
    await ensureStreams(jet.jsm, ["events"], log);
    const bridge = buildBridge({ nc, jet, log, metrics, config: bridgeConfigFromEnv(env) });
    await bridge.start(micro);
    // For sites without VEBA: vCenter's events through vcenter-proxy, published the same way.
    const poller = pollerEnv.POLLER_ENABLED
      ? buildPoller({ nc, jet, checkpoints: await openBucket(nc, "eventPoller"), log: log.child({ part: "poller" }), metrics, config: pollerConfigFromEnv(pollerEnv, env.BRIDGE_PUBLISH_TIMEOUT_MS) })
      : undefined;
    poller?.start();
    return {
      async stop() {
        await poller?.stop();
        await bridge.stop();
      },
      checks: { http: () => bridge.listening },
      ready: { port: bridge.port },
    };
  },
});
