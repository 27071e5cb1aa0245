import type { z } from "zod";
import type { BaseEnv } from "./config.js";
import { loadConfig } from "./config.js";
import type { Consumers } from "@iaas/contracts";
import type { RunningCommandService } from "./commands.js";
import { ensureConsumer, ensureStreams, jetstreamFor, openBucket, type Jet, type KV } from "./jetstream.js";
import { createLogger, type Logger } from "./log.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { addMicroService, type Service } from "./micro.js";
import { connectNats, isNatsConnected, type NatsConnection } from "./nats.js";
import { startHealthServer, type ReadinessCheck } from "./health.js";
import { fatal, onShutdown } from "./shutdown.js";
import { startTracing } from "./tracing.js";

export interface ServiceContext<E, P> {
  env: E;
  /** What `prepare` returned. */
  prepared: P;
  log: Logger;
  nc: NatsConnection;
  jet: Jet;
  metrics: Metrics;
  /** The registered micro service, to add endpoints to. */
  micro: Service;
}

export interface RunningService {
  /** Stop taking work and let work in flight finish; NATS is drained afterwards by runService. */
  stop(): Promise<void>;
  /** After NATS is drained: release what must outlive the last request (vCenter sessions). */
  close?(): Promise<void>;
  /** Readiness beyond "NATS connected" (e.g. a live vCenter session). */
  checks?: Record<string, ReadinessCheck>;
  /** Extra fields for the "ready" log line (where it listens). */
  ready?: Record<string, unknown>;
}

export interface ServiceDefinition<S extends z.ZodType<BaseEnv & { HEALTH_PORT: number }>, P> {
  /** The service's name: NATS connection name, micro-service name, logger name, metrics label. */
  name: string;
  description: string;
  version?: string;
  env: S;
  /**
   * Runs before connecting to NATS: load what must be valid for the service to start at all (the
   * policy, more configuration) and connect what it cannot work without (vCenter), so a bad file
   * or refused credentials stop the process at once, even with NATS unreachable.
   */
  prepare?(env: z.infer<S>, log: Logger): P | Promise<P>;
  /** Wires and starts the service (its build(deps) + start()); throws to stop the process. */
  start(ctx: ServiceContext<z.infer<S>, P>): Promise<RunningService>;
}

/**
 * What every service's main.ts does, once: parse the environment (a bad variable stops the
 * process naming it), log, prepare, connect to NATS, register the micro service, start the
 * service, serve /healthz /readyz /metrics and log "<name> ready"; on SIGINT/SIGTERM stop the
 * service, deregister, close the health server, drain NATS, then close what outlives NATS and
 * flush the spans (exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set).
 */
export async function runService<S extends z.ZodType<BaseEnv & { HEALTH_PORT: number }>, P = undefined>(def: ServiceDefinition<S, P>): Promise<void> {
  let log: Logger | undefined;
  try {
    const env = loadConfig(def.env);
    log = createLogger(def.name, env.LOG_LEVEL);
    // Before anything makes a span; off (the API's no-op tracer) unless OTEL_EXPORTER_OTLP_ENDPOINT is set.
    const tracing = await startTracing(def.name);
    const prepared = (await def.prepare?.(env, log)) as P;
    const nc = await connectNats(env, def.name, log, { noAsyncTraces: true });
    const jet = await jetstreamFor(nc);
    const metrics = createMetrics(def.name);
    const micro = await addMicroService(nc, def.name, def.version ?? "0.1.0", def.description);
    const running = await def.start({ env, prepared, log, nc, jet, metrics, micro });
    const health = await startHealthServer({
      host: env.HEALTH_HOST,
      port: env.HEALTH_PORT,
      checks: { nats: () => isNatsConnected(nc), ...running.checks },
      registry: metrics.registry,
      log,
    });
    log.info({ health: `http://${env.HEALTH_HOST}:${health.port}`, healthPort: health.port, id: micro.info().id, ...(tracing.enabled ? { tracing: "otlp" } : {}), ...running.ready }, `${def.name} ready`);
    const l = log;
    onShutdown(l, async () => {
      await running.stop();
      await micro.stop();
      await health.close();
      await nc.drain();
      await running.close?.();
      // Last: the spans of the work that just finished are exported before the process exits.
      await tracing.shutdown().catch((err: unknown) => l.warn({ err }, "trace export at shutdown failed"));
    });
  } catch (err) {
    fatal(log, err);
  }
}

export interface CommandServiceDefinition<S extends z.ZodType<BaseEnv & { HEALTH_PORT: number }>, P> extends Omit<ServiceDefinition<S, P>, "start"> {
  /** The durable it consumes (`iaas.cmd.<area>.>`); CONSUMER_ACK_WAIT_MS and CONSUMER_MAX_DELIVER override its settings. */
  consumer: keyof typeof Consumers;
  /** More durables it consumes (vm-lifecycle's snapshot commands), made sure of with the same overrides. */
  moreConsumers?: readonly (keyof typeof Consumers)[];
  /** The service's build(deps), given the `iaas_command_state` bucket. */
  build(ctx: ServiceContext<z.infer<S>, P> & { state: KV }): RunningCommandService;
}

/**
 * runService for a service that handles commands (power, vm-lifecycle): the streams it reads and
 * writes, its durable consumer and the command-state bucket are made sure of, then it is built and started.
 */
export function runCommandService<S extends z.ZodType<BaseEnv & { HEALTH_PORT: number }>, P = undefined>(def: CommandServiceDefinition<S, P>): Promise<void> {
  const { consumer, moreConsumers = [], build, ...rest } = def;
  return runService({
    ...rest,
    async start(ctx) {
      await ensureStreams(ctx.jet.jsm, ["commands", "results", "audit", "deadLetters", "notices"], ctx.log);
      for (const c of [consumer, ...moreConsumers]) await ensureConsumer(ctx.jet.jsm, c, { ackWaitMs: ctx.env.CONSUMER_ACK_WAIT_MS, maxDeliver: ctx.env.CONSUMER_MAX_DELIVER });
      const service = build({ ...ctx, state: await openBucket(ctx.nc, "commandState") });
      await service.start();
      return service;
    },
  });
}
