import { ErrorCatalogue, oneLine, type CodedError } from "@iaas/contracts";
import { code, escapeKeepingMentions } from "./mrkdwn.js";
import type { CommandParseError } from "../commands/parse.js";
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

function usageLines(usage: readonly string[]): string {
  return usage.map((u) => `Usage: ${code(`${SLASH} ${u}`)}`).join("\n");
}

/** An immediate error: the one-line message and the request id, then the command's usage when there is one. */
export function parseErrorText(err: CommandParseError, requestId?: string): string {
  return [`:warning: ${err.message}${requestId ? ` (request ${code(requestId)})` : ""}`, usageLines(err.usage)].filter(Boolean).join("\n");
}

/**
 * A refusal or failure at the gateway (not a parse error); user text is escaped here. A user or
 * group mention outside inline code stays a mention ("`web-01` belongs to <@UALICE>").
 */
export function errorText(err: { code: string; message: string }, requestId?: string): string {
  return `:warning: ${escapeKeepingMentions(err.message)}${requestId ? ` (request ${code(requestId)})` : ""}`;
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
