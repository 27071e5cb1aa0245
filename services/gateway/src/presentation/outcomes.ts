import { PowerStateWords, formatMemory, oneLine, type Notice, type RemediationChange, type Result, type ResultFacts, type VmSummary } from "@iaas/contracts";
import { context, section, type Block } from "./blocks.js";
import { runButton } from "../listeners/interactions.js";
import { code, escape, escapeKeepingMentions } from "./mrkdwn.js";
import { RESULT_RESPONSE_TYPE, userFacingError } from "./render.js";
import type { SlackMessage } from "../transport/reply.js";

/**
 * What the command services and remediation report, as Slack shows it: a result of a command
 * (`iaas.result.<id>`) or a notice for the notify channel (`iaas.notify.>`). Those services write
 * plain text and facts and no Slack markup; here their texts, and every name and error text in
 * them that came from vCenter, an event or a user, are escaped, and the facts become Block Kit.
 */

const SLASH = "/iaas";

/** A VM's facts in one line: `` `web-01`: powered on · 2 vCPU · 4 GB memory ``. */
export function vmLine(vm: Pick<VmSummary, "name" | "powerState" | "numCpu" | "memoryMB">): string {
  return `${code(vm.name)}: ${PowerStateWords[vm.powerState]} · ${vm.numCpu} vCPU · ${formatMemory(vm.memoryMB)} memory`;
}

/** The facts a result carries beyond its VM summary: what it copied, with which size, in which vCenter (when the command named one). */
function factsLine(f: ResultFacts | undefined, vm: VmSummary | undefined): string | undefined {
  const parts = [
    vm ? vmLine(vm) : f?.vm ? code(f.vm) : undefined,
    f?.source ? `from ${code(f.source)}` : undefined,
    f?.size ? `size ${code(f.size.name)}: ${f.size.cpu} vCPU · ${formatMemory(f.size.memoryMB)} memory${f.size.diskGB !== undefined ? ` · ${f.size.diskGB} GB disk` : ""}` : undefined,
    f?.vcenter ? `vCenter ${code(f.vcenter)}` : undefined,
  ].filter((p): p is string => p !== undefined);
  return parts.length ? parts.join(" · ") : undefined;
}

/** The reply posted for a result message: the text (also the fallback), and blocks with the facts. */
export function resultMessage(r: Result, typed: string): SlackMessage {
  const req = `(request ${code(r.id)})`;
  let head: string;
  let text: string;
  let facts: string | undefined;
  switch (r.status) {
    case "progress":
      head = text = `:hourglass_flowing_sand: ${escape(oneLine(r.message))} ${req}`;
      facts = factsLine(r.facts, undefined);
      break;
    case "succeeded":
      // A service's message may name a user or a group (`owner`: "now belongs to <@UBOB>"): those stay mentions.
      head = `:white_check_mark: ${escapeKeepingMentions(oneLine(r.message))} ${req}`;
      text = [head, r.vm ? vmLine(r.vm) : undefined].filter(Boolean).join("\n");
      facts = factsLine(r.facts, r.vm);
      break;
    case "failed": {
      const again = r.error.retryable ? " This may be temporary: try again in a minute." : "";
      head = text = `:x: ${code(`${SLASH} ${typed.trim().slice(0, 200)}`)} failed: ${escapeKeepingMentions(userFacingError(r.error))}${again} ${req}`;
      facts = `${code(r.command)} · ${r.error.code}`;
      break;
    }
  }
  return { response_type: RESULT_RESPONSE_TYPE, replace_original: false, text, blocks: [section(head), ...(facts ? [context(facts)] : [])] };
}

const ICON: Record<Notice["severity"], string> = { info: ":information_source:", warning: ":warning:", error: ":rotating_light:" };

function changeText(c: RemediationChange): string {
  return [
    c.cpu ? `${c.cpu.from} → ${c.cpu.to} vCPU` : undefined,
    c.memoryMB ? `${formatMemory(c.memoryMB.from)} → ${formatMemory(c.memoryMB.to)} memory` : undefined,
    c.datastore ? `${code(c.datastore.from)} → ${code(c.datastore.to)}` : undefined,
  ]
    .filter(Boolean)
    .join(", ");
}

/** A notice for the notify channel: its line (also the fallback) and its facts under it. */
export function noticeMessage(n: Notice): { text: string; blocks: Block[] } {
  const text = `${ICON[n.severity]} ${n.dryRun ? "[dry run] " : ""}${escape(n.text)}`;
  const decision = [n.decision, n.reason].filter(Boolean).join(": ");
  const facts = [
    n.vm ? `VM ${code(n.vm)}` : undefined,
    n.datastore ? `datastore ${code(n.datastore)}` : undefined,
    n.vcenter ? `vCenter ${code(n.vcenter)}` : undefined,
    n.alarm ? `alarm ${code(n.alarm)}` : undefined,
    n.change && changeText(n.change) ? changeText(n.change) : undefined,
    n.cause ? `cause: ${code(n.cause)}` : undefined,
    decision ? `${n.kind} (${escape(decision)})` : n.kind,
  ]
    .filter(Boolean)
    .join(" · ");
  // Buttons run `/iaas <text>` as whoever clicks them (the same path and policy as typing it).
  const buttons = (n.buttons ?? []).map((b) => runButton(b.label, b.text, b.style));
  return { text, blocks: [section(text), context(facts), ...(buttons.length ? [{ type: "actions", elements: buttons } as Block] : [])] };
}
