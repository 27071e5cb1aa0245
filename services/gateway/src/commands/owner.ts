import { IaasError, VmCommandSchema } from "@iaas/contracts";
import { teamLabel } from "@iaas/policy";
import { fields } from "../presentation/blocks.js";
import { code, plainCode } from "../presentation/mrkdwn.js";
import { checkTeam } from "./team.js";
import { inVcenter } from "@iaas/runtime";
import { inWords } from "./vcenter.js";
import type { RecordOf } from "./verb.js";

/** Who the VM goes to, as a message says it. */
const toWhom = (cmd: { owner?: string; team?: string }) => (cmd.owner !== undefined ? `<@${cmd.owner}>` : teamLabel(cmd.team!));

export const owner: RecordOf<"owner"> = {
  kind: "action",
  // `owner` reaches the VMs the actor owns (handing one on); `owner:any` every VM (adoption, admins).
  ids: ["owner"],
  label: () => "vm.owner",
  vm: (cmd) => cmd.vm,
  precheck: (policy, cmd) => {
    policy.checkProtected("owner", { name: cmd.vm });
    checkTeam(policy, cmd.team);
  },
  target: (cmd) => ({ vm: cmd.vm, id: "owner" }),
  checkTarget: (_cmd, vm) => {
    if (vm.template) throw new IaasError("IAAS_INVALID_ARGUMENT", `${plainCode(vm.name)} is a template: templates belong to IT and have no owner in IaaS; nothing changed.`);
  },
  inspect: async (_cmd, { vm }) => (vm ? fields([["Owner now", `${vm.owner ? `<@${vm.owner}>` : "nobody"}${vm.team ? ` · ${teamLabel(vm.team)}` : ""}`]]) : []),
  command: (cmd, base) =>
    VmCommandSchema.parse({ ...base, ...inVcenter(cmd.vcenter), area: "vm", action: "owner", vm: cmd.vm, ...(cmd.owner !== undefined ? { owner: cmd.owner } : {}), ...(cmd.team !== undefined ? { team: cmd.team } : {}) }),
  doing: (cmd) => `Giving ${code(cmd.vm)}${inWords(cmd.vcenter)} to ${toWhom(cmd)}`,
  question: (cmd) => `Give ${code(cmd.vm)}${inWords(cmd.vcenter)} to ${toWhom(cmd)}?`,
};
