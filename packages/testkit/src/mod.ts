export { startNatsServer, type NatsServer, type NatsServerOptions } from "./nats.js";
export { startVcsim, vcsimBinary, vcsimArgs, type Vcsim, type VcsimOptions } from "./vcsim.js";
export {
  SlackStandIn,
  slackSignature,
  signedHeaders,
  slashCommandBody,
  blockActionsBody,
  postSigned,
  type RecordedCall,
  type SlashCommandFields,
  type PostResult,
} from "./slack.js";
export { stopProcess, killProcess } from "./process.js";
export { waitUntil } from "./wait.js";
