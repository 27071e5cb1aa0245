import type { Actor, VmSummary } from "@iaas/contracts";
import type { Policy } from "@iaas/policy";
import { mayRunOn } from "../commands/verbs.js";
import { runButton } from "../listeners/interactions.js";
import type { Button } from "../presentation/blocks.js";

/**
 * The buttons a VM's answer (`info`, the App Home) offers the actor: each runs its `/iaas`
 * command as the clicker, and only those the policy lets the actor run on this VM are shown.
 * Extend and Snapshot appear once the grammar has those commands. A VM of a vCenter named with
 * `vc=` gets buttons that name it too.
 */
export function vmButtons(policy: Policy, actor: Actor, vm: Pick<VmSummary, "name" | "path" | "owner" | "team" | "powerState" | "template">, vcenter?: string): Button[] {
  if (vm.template) return [];
  const vc = vcenter === undefined ? "" : ` vc=${vcenter}`;
  const candidates: [string, string, ("primary" | "danger")?][] = [
    vm.powerState === "poweredOn" ? ["Power off", `power off ${vm.name}${vc}`] : ["Power on", `power on ${vm.name}${vc}`, "primary"],
    ["Extend", `extend ${vm.name}${vc}`],
    ["Snapshot", `snapshot create ${vm.name}${vc}`],
    ["Delete", `delete ${vm.name}${vc}`, "danger"],
  ];
  return candidates.filter(([, text]) => mayRunOn(policy, actor, text, vm)).map(([label, text, style]) => runButton(label, text, style));
}
