export { startNatsServer, type NatsServer, type NatsServerOptions } from "./nats.js";
export { startVcsim, vcsimBinary, vcsimArgs, type Vcsim, type VcsimOptions } from "./vcsim.js";
export {
  SlackStandIn,
  slackSignature,
  signedHeaders,
  slashCommandBody,
  slashCommandPayload,
  blockActionsBody,
  postSigned,
  type RecordedCall,
  type StoredView,
  type SlackStandInOptions,
  type SocketAck,
  type SocketEnvelopeType,
  type SlashCommandFields,
  type PostResult,
} from "./slack.js";
export { SlackConsole, CONSOLE_PEOPLE, type ConsolePerson, type ConsoleMessage, type ConsoleEvent, type SlackConsoleOptions } from "./console.js";
export { stopProcess, killProcess } from "./process.js";
export { waitUntil } from "./wait.js";
