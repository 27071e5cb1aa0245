export { buildGateway, type Gateway, type GatewayDeps } from "./build.js";
export { GatewayEnvSchema, type GatewayConfig } from "./config.js";
export { ensureGatewayResources } from "./resources.js";
export { parseCommand, tokenize, usageOf, Grammar, Verbs, CommandParseError, type ParsedCommand, type ParseResult, type Verb } from "./parse.js";
export { commandIdFor } from "./ids.js";
export { responseUrlGuard } from "./reply.js";
export { SLACK_EVENTS_PATH, SOCKET_RECONNECT, reconnectDelay, type SocketReconnect } from "./slack.js";
