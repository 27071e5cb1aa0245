import { ErrorCatalogue, oneLine, type CodedError, type PowerState, type Result, type VmSummary } from "@iaas/contracts";
import { code, escape } from "./mrkdwn.js";
import type { CommandParseError } from "../commands/parse.js";
import type { RequestRecord } from "../stores/requests.js";
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

/** A refusal or failure at the gateway (not a parse error); user text is escaped here. */
export function errorText(err: { code: string; message: string }, requestId?: string): string {
  return `:warning: ${escape(err.message)}${requestId ? ` (request ${code(requestId)})` : ""}`;
}

const POWER_STATE: Record<PowerState, string> = { poweredOn: "powered on", poweredOff: "powered off", suspended: "suspended" };

function memory(mb: number): string {
  if (mb >= 1024 && mb % 512 === 0) return `${mb / 1024} GB`;
  return `${mb} MB`;
}

function facts(vm: VmSummary): string {
  return `${code(vm.name)}: ${POWER_STATE[vm.powerState]} · ${vm.numCpu} vCPU · ${memory(vm.memoryMB)} memory`;
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

/** The text posted for a result message. */
export function resultText(r: Result, rec: RequestRecord): string {
  const req = `(request ${code(r.id)})`;
  const what = code(`${SLASH} ${rec.text.trim().slice(0, 200)}`);
  switch (r.status) {
    case "progress":
      return `:hourglass_flowing_sand: ${escape(oneLine(r.message))} ${req}`;
    case "succeeded":
      return [`:white_check_mark: ${escape(oneLine(r.message))} ${req}`, r.vm ? facts(r.vm) : undefined].filter(Boolean).join("\n");
    case "failed": {
      const again = r.error.retryable ? " This may be temporary: try again in a minute." : "";
      return `:x: ${what} failed: ${escape(userFacingError(r.error))}${again} ${req}`;
    }
  }
}
