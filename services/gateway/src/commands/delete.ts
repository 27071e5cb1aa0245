import { PowerStateWords, VmCommandSchema } from "@iaas/contracts";
import { teamLabel } from "@iaas/policy";
import { fields } from "../presentation/blocks.js";
import { code } from "../presentation/mrkdwn.js";
import { memory } from "../presentation/views.js";
import { inVcenter } from "@iaas/runtime";
import { inWords } from "./vcenter.js";
import type { RecordOf } from "./verb.js";

export const del: RecordOf<"delete"> = {
  kind: "action",
  // `delete` reaches own and team VMs, `delete:any` every VM (the scope is checked on the VM).
  ids: ["delete"],
  label: () => "vm.delete",
  vm: (cmd) => cmd.vm,
  precheck: (policy, cmd) => policy.checkProtected("delete", { name: cmd.vm }),
  /**
   * The VM is looked up before the buttons are shown (`target`), so a user is told at once that it
   * does not exist, is not theirs, or is protected by folder. Without an answer the buttons are
   * shown anyway: vm-lifecycle checks everything again.
   */
  target: (cmd) => ({ vm: cmd.vm, id: "delete" }),
  approvalFacts: (cmd) => ({ command: "delete", vm: cmd.vm }),
  inspect: async (_cmd, { vm }) => {
    if (!vm) return [];
    return fields([
      ["VM", `${code(vm.name)}${vm.path ? `\n${code(vm.path)}` : ""}`],
      ["Now", `${PowerStateWords[vm.powerState]}${vm.powerState === "poweredOn" ? " (it will be powered off first)" : ""} · ${vm.numCpu} vCPU · ${memory(vm.memoryMB)}`],
      ["Owner", `${vm.owner ? `<@${vm.owner}>` : "none recorded"}${vm.team ? ` · ${teamLabel(vm.team)}` : ""}`],
    ]);
  },
  command: (cmd, base) => VmCommandSchema.parse({ ...base, ...inVcenter(cmd.vcenter), area: "vm", action: "delete", vm: cmd.vm }),
  doing: (cmd) => `Deleting ${code(cmd.vm)}${inWords(cmd.vcenter)}`,
  question: (cmd) => `Delete ${code(cmd.vm)}${inWords(cmd.vcenter)}? This cannot be undone.`,
};
