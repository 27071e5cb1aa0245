import type { PowerState, VmSummary } from "./common.js";

// The words every service and the gateway use for the same facts, so a VM reads the same in a
// result, a notice, an error and a list. Plain text: nothing here is Slack markup.

/** A power state in words: `powered on`. */
export const PowerStateWords: Readonly<Record<PowerState, string>> = { poweredOn: "powered on", poweredOff: "powered off", suspended: "suspended" };

/** Memory in MB as people say it: whole and quarter GB from 1 GB up (`4 GB`, `1.5 GB`), MB otherwise (`512 MB`, `1000 MB`). */
/** vSphere's `guest.toolsRunningStatus`, in words; an unknown value is shown as vSphere says it. */
export const ToolsStatusWords: Readonly<Record<string, string>> = {
  guestToolsRunning: "running",
  guestToolsNotRunning: "not running",
  guestToolsExecutingScripts: "running its start-up scripts",
};

export function formatMemory(mb: number): string {
  return mb >= 1024 && mb % 256 === 0 ? `${mb / 1024} GB` : `${mb} MB`;
}

/**
 * A name in plain text, between backticks: readable as it is over NATS and in logs, and inline code
 * where the text is shown as markdown. A backtick in the name becomes `'` so the quote cannot end early.
 */
export function quote(name: string): string {
  return `\`${name.replace(/`/g, "'")}\``;
}

/** A VM's size and state in one phrase: `2 vCPU, 4 GB memory, powered on`. */
export function describeVm(vm: Pick<VmSummary, "numCpu" | "memoryMB" | "powerState">): string {
  return `${vm.numCpu} vCPU, ${formatMemory(vm.memoryMB)} memory, ${PowerStateWords[vm.powerState]}`;
}
