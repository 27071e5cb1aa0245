export { buildGateway, type Gateway, type GatewayDeps } from "./build.js";
export { GatewayEnvSchema, type GatewayConfig } from "./config.js";
export { ensureGatewayResources } from "./resources.js";
export { parseCommand, tokenize, usageOf, Grammar, Verbs, CommandParseError, type ParsedCommand, type ParseResult, type Verb } from "./commands/parse.js";
export { commandIdFor } from "./commands/ids.js";
export { responseUrlGuard } from "./transport/reply.js";
export { SLACK_EVENTS_PATH, SOCKET_RECONNECT, reconnectDelay, type SocketReconnect } from "./transport/slack.js";
