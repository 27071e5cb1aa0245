export { buildBridge, VERSION, type Bridge, type BridgeDeps, type AcceptedAnswer } from "./build.js";
export { checkJsonShape, type JsonLimits } from "./limits.js";
export { BridgeDefaults, BridgeEnvSchema, bridgeConfigFromEnv, type BridgeConfig, type BridgeAuth, type BridgeEnv } from "./config.js";
export { contentModeOf, eventClassOf, parseEvents, mediaTypeOf, MediaTypes, type ContentMode, type ParsedEvent } from "./cloudevents.js";
export { isAuthorized } from "./auth.js";
export { Rejection, RejectCodes, RejectReasons, type RejectReason } from "./reject.js";
export { buildPoller, PollerEnvSchema, pollerConfigFromEnv, pollerConfigsFromEnv, sourceOf, toVsphereEvent, pascalize, type Poller, type PollerConfig, type PollerDeps, type PollerEnv, type PollResult } from "./poller.js";
