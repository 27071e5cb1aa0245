import { VmCommandSchema } from "@iaas/contracts";
import { code } from "../presentation/mrkdwn.js";
import { checkNewVm, leaseOf, newVmSuffix } from "./team.js";
import { inVcenter } from "@iaas/runtime";
import { inWords } from "./vcenter.js";
import type { RecordOf } from "./verb.js";

export const deploy: RecordOf<"deploy"> = {
  kind: "action",
  ids: ["deploy"],
  label: () => "vm.deploy",
  vm: (cmd) => cmd.name,
  precheck: (policy, cmd) => checkNewVm(policy, cmd, true),
  newTeam: (cmd) => cmd.team,
  approvalFacts: (cmd, { policy }) => {
    const size = policy.resolveSize(cmd.size);
    return { command: "deploy", vm: cmd.name, size, cpu: size.cpu, memoryGB: size.memoryGB, ...(cmd.leaseMs !== undefined ? { leaseMs: cmd.leaseMs } : {}) };
  },
  command: (cmd, base) =>
    VmCommandSchema.parse({ ...base, ...inVcenter(cmd.vcenter), area: "vm", action: "deploy", template: cmd.template, name: cmd.name, ...(cmd.size ? { size: cmd.size } : {}), ...(cmd.team ? { team: cmd.team } : {}), ...leaseOf(cmd) }),
  doing: (cmd) => `Deploying ${code(cmd.template)} as ${code(cmd.name)}${inWords(cmd.vcenter)}${newVmSuffix(cmd)}`,
};
