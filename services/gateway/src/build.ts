import { jetstreamFor, openBucket, type Logger, type Metrics, type NatsConnection } from "@iaas/runtime";
import type { GatewayConfig } from "./config.js";
import { gatewayMetrics } from "./metrics.js";
import { Replier, responseUrlGuard } from "./reply.js";
import { RequestStore } from "./requests.js";
import { startResultRelay, type ResultRelay } from "./results.js";
import { createSlackTransport } from "./slack.js";
import { SlashCommands } from "./slash.js";

export interface GatewayDeps {
  nc: NatsConnection;
  config: GatewayConfig;
  log: Logger;
  metrics: Metrics;
}

export interface Gateway {
  /** Opens the request bucket, starts relaying results and starts taking Slack requests. */
  start(): Promise<{ port: number | undefined }>;
  /** Stops taking requests, lets submissions and result posts in flight finish. Leaves `nc` open. */
  stop(): Promise<void>;
}

/**
 * The gateway, wired but not started. Needs the streams, the `gateway-results` consumer and
 * the `iaas_requests` bucket to exist (`ensureGatewayResources`).
 */
export function buildGateway({ nc, config, log, metrics }: GatewayDeps): Gateway {
  const gm = gatewayMetrics(metrics);
  const allowed = responseUrlGuard(config.SLACK_API_URL);
  let slash: SlashCommands | undefined;
  let relay: ResultRelay | undefined;

  const transport = createSlackTransport(config, log, async (body, ack, meta) => {
    if (!slash) throw new Error("gateway not started");
    await slash.handle(body, ack, meta);
  });

  return {
    start: async () => {
      const { js } = await jetstreamFor(nc);
      const requests = new RequestStore(await openBucket(nc, "requests"), log);
      const replier = new Replier({ requests, allowed, log, ...(transport.postMessage ? { postMessage: transport.postMessage } : {}) });
      slash = new SlashCommands({ js, requests, replier, allowed, log, metrics: gm });
      relay = await startResultRelay({ js, requests, replier, log, metrics: gm });
      try {
        return await transport.start();
      } catch (err) {
        await relay.stop();
        throw err;
      }
    },
    stop: async () => {
      await transport.stop();
      await slash?.stop();
      await relay?.stop();
    },
  };
}
