import { PowerCommandSchema } from "@iaas/contracts";
import { startCommandConsumer, type CommandConsumer, type Jet, type KV, type Logger, type Metrics, type NatsConnection } from "@iaas/runtime";
import { runPower } from "./power.js";

export interface PowerServiceDeps {
  nc: NatsConnection;
  jet: Jet;
  state: KV;
  log: Logger;
  metrics: Metrics;
  config: { proxyTimeoutMs: number; concurrency: number };
}

/** The power service, not started: `start()` begins consuming `iaas.cmd.power.*`. */
export function buildPowerService(deps: PowerServiceDeps) {
  let consumer: CommandConsumer | undefined;
  return {
    async start(): Promise<void> {
      consumer = await startCommandConsumer({
        nc: deps.nc,
        jet: deps.jet,
        state: deps.state,
        consumer: "power",
        schema: PowerCommandSchema,
        handle: (cmd, ctx) => runPower({ nc: deps.nc, proxyTimeoutMs: deps.config.proxyTimeoutMs }, cmd, ctx),
        log: deps.log,
        metrics: deps.metrics,
        concurrency: deps.config.concurrency,
      });
    },
    async stop(): Promise<void> {
      await consumer?.stop();
    },
  };
}
