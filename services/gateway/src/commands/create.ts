import { VmCommandSchema } from "@iaas/contracts";
import { code } from "../presentation/mrkdwn.js";
import { checkNewVm, leaseOf, newVmSuffix } from "./team.js";
import { inVcenter } from "@iaas/runtime";
import { inWords } from "./vcenter.js";
import type { RecordOf } from "./verb.js";

export const create: RecordOf<"create"> = {
  kind: "action",
  ids: ["create"],
  label: () => "vm.create",
  vm: (cmd) => cmd.name,
  precheck: (policy, cmd) => checkNewVm(policy, cmd, true),
  newTeam: (cmd) => cmd.team,
  approvalFacts: (cmd, { policy }) => {
    const size = policy.resolveSize(cmd.size);
    return { command: "create", vm: cmd.name, size, cpu: size.cpu, memoryGB: size.memoryGB, ...(cmd.leaseMs !== undefined ? { leaseMs: cmd.leaseMs } : {}) };
  },
  command: (cmd, base) => VmCommandSchema.parse({ ...base, ...inVcenter(cmd.vcenter), area: "vm", action: "create", name: cmd.name, ...(cmd.size ? { size: cmd.size } : {}), ...(cmd.team ? { team: cmd.team } : {}), ...leaseOf(cmd) }),
  doing: (cmd) => `Creating ${code(cmd.name)}${inWords(cmd.vcenter)}${newVmSuffix(cmd)}`,
};
