import { ErrorCatalogue, oneLine, type CodedError, type PowerAction } from "@iaas/contracts";
import { code, escape } from "./mrkdwn.js";
import type { CommandParseError, ParsedCommand } from "../commands/parse.js";
import type { SlackMessage } from "../transport/reply.js";

/**
 * Everything the gateway says to a user, in one place. Replies are ephemeral: the ack is, so
 * the result stays in the same private thread of conversation, and an `in_channel` result would
 * show VM names and facts to people the policy may not let see them (list/info are per caller).
 */
export const RESULT_RESPONSE_TYPE = "ephemeral" as const;

const SLASH = "/iaas";

export function ephemeral(text: string): SlackMessage {
  return { response_type: "ephemeral", text };
}

const POWER_DOING: Record<PowerAction, string> = {
  on: "Powering on",
  off: "Powering off",
  reset: "Resetting",
  suspend: "Suspending",
  shutdown: "Shutting down the guest OS of",
  reboot: "Rebooting the guest OS of",
};

/** The commands that change something: published to JetStream, answered by a command service. */
export type ActionCommand = Extract<ParsedCommand, { verb: "create" | "clone" | "deploy" | "power" | "resize" | "delete" }>;

/** What an accepted command is doing, without the request id: `Deleting \`web-01\``. */
export function doingText(cmd: ActionCommand): string {
  switch (cmd.verb) {
    case "power":
      return `${POWER_DOING[cmd.action]} ${code(cmd.vm)}`;
    case "create":
      return `Creating ${code(cmd.name)}${cmd.size ? ` (${code(cmd.size)})` : ""}`;
    case "clone":
      return `Cloning ${code(cmd.source)} to ${code(cmd.name)}`;
    case "deploy":
      return `Deploying ${code(cmd.template)} as ${code(cmd.name)}${cmd.size ? ` (${code(cmd.size)})` : ""}`;
    case "resize": {
      const to = [cmd.cpu !== undefined ? `${cmd.cpu} vCPU` : undefined, cmd.memoryGB !== undefined ? `${cmd.memoryGB} GB memory` : undefined].filter(Boolean).join(", ");
      return `Resizing ${code(cmd.vm)} to ${to}`;
    }
    case "delete":
      return `Deleting ${code(cmd.vm)}`;
  }
}

/** The ack of an accepted command: what is happening and the request id. */
export function acceptedText(cmd: ActionCommand, id: string): string {
  return `${doingText(cmd)}… (request ${code(id)})`;
}

/** What the Confirm / Cancel prompt asks. */
export function questionText(cmd: ActionCommand, typed: string): string {
  switch (cmd.verb) {
    case "delete":
      return `Delete ${code(cmd.vm)}? This cannot be undone.`;
    default:
      return `Run ${code(`${SLASH} ${typed.trim().slice(0, 200)}`)}?`;
  }
}

function usageLines(usage: readonly string[]): string {
  return usage.map((u) => `Usage: ${code(`${SLASH} ${u}`)}`).join("\n");
}

/** An immediate error: the one-line message and the request id, then the command's usage when there is one. */
export function parseErrorText(err: CommandParseError, requestId?: string): string {
  return [`:warning: ${err.message}${requestId ? ` (request ${code(requestId)})` : ""}`, usageLines(err.usage)].filter(Boolean).join("\n");
}

/** A refusal or failure at the gateway (not a parse error); user text is escaped here. */
export function errorText(err: { code: string; message: string }, requestId?: string): string {
  return `:warning: ${escape(err.message)}${requestId ? ` (request ${code(requestId)})` : ""}`;
}

// A result's error message comes from another service. It is meant for users, but the gateway
// is the last line: one line, bounded, and never something that looks like a stack trace.
const STACK_LIKE = /\bat \S+ \(?\S+:\d+:\d+\)?|node:internal|\/node_modules\//;

export function userFacingError(e: CodedError): string {
  const fallback = ErrorCatalogue[e.code].message;
  if (e.code === "IAAS_INTERNAL") return fallback;
  const m = oneLine(e.message);
  if (m.length === 0 || STACK_LIKE.test(m)) return fallback;
  return m.length > 500 ? `${m.slice(0, 497)}…` : m;
}
