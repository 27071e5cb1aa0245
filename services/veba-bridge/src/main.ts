import { ServiceNames } from "@iaas/contracts";
import { ensureStreams, loadConfig, openBucket, runService } from "@iaas/runtime";
import { BRIDGE_DESCRIPTION, VERSION, buildBridge } from "./build.js";
import { BridgeEnvSchema, bridgeConfigFromEnv } from "./config.js";
import { PollerEnvSchema, buildPoller, pollerConfigsFromEnv } from "./poller.js";

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
    // One poller per vCenter of VCENTER_SOURCES (each with its own source and checkpoint).
    const checkpoints = pollerEnv.POLLER_ENABLED ? await openBucket(nc, "eventPoller") : undefined;
    const pollers = checkpoints
      ? pollerConfigsFromEnv(pollerEnv, env.BRIDGE_PUBLISH_TIMEOUT_MS).map((config) =>
          buildPoller({ nc, jet, checkpoints, log: log.child({ part: "poller", ...(config.vcenter ? { vcenter: config.vcenter } : {}) }), metrics, config }),
        )
      : [];
    for (const p of pollers) p.start();
    return {
      async stop() {
        await Promise.all(pollers.map((p) => p.stop()));
        await bridge.stop();
      },
      checks: { http: () => bridge.listening },
      ready: { port: bridge.port },
    };
  },
});
