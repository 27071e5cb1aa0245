import { ProxyEndpoints } from "@iaas/contracts";
import { infoMessage } from "../presentation/views.js";
import { vmButtons } from "../forms/vm-actions.js";
import { inVcenter } from "@iaas/runtime";
import type { RecordOf } from "./verb.js";

export const info: RecordOf<"info"> = {
  kind: "remote",
  // `info` reaches own and team VMs, `info:any` every VM: a VM's facts are its owner's business.
  ids: ["info"],
  vm: (cmd) => cmd.vm,
  answer: async (cmd, { ask, policy, actorOn }) => {
    const { vm } = await ask(ProxyEndpoints.vmInfo, { vm: cmd.vm, ...inVcenter(cmd.vcenter) });
    const actor = actorOn(vm.team);
    policy.authorizeOn(actor, "info", vm);
    // The actions the caller may take on it, as buttons that run the command as the clicker.
    return infoMessage(vm, vmButtons(policy, actor, vm, cmd.vcenter), cmd.vcenter);
  },
};
