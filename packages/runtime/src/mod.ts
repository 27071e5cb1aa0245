export { loadConfig, ConfigError, BaseEnvSchema, PortSchema, natsAuthRefinement, type BaseEnv } from "./config.js";
export { createLogger, type Logger } from "./log.js";
export { connectNats, isNatsConnected, type NatsConnection } from "./nats.js";
export { ensureStreams, ensureConsumer, openBucket, jetstreamFor, encodeJson, decodeJson, makeHeaders, type Jet, type KV, type JetStreamClient, type JetStreamManager } from "./jetstream.js";
export { addMicroService, addJsonEndpoint, requestJson, type JsonEndpoint, type Service } from "./micro.js";
export { createMetrics, Counter, Histogram, Gauge, Registry, type Metrics } from "./metrics.js";
export { startHealthServer, type HealthServer, type ReadinessCheck } from "./health.js";
export { startCommandConsumer, publishFinal, publishAudit, type CommandContext, type CommandOutcome, type CommandConsumer } from "./commands.js";
export { onShutdown, fatal } from "./shutdown.js";
