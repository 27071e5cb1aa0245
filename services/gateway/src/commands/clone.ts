import { VmCommandSchema } from "@iaas/contracts";
import { code } from "../presentation/mrkdwn.js";
import { checkNewVm, leaseOf, newVmSuffix } from "./team.js";
import { inVcenter } from "@iaas/runtime";
import { inWords } from "./vcenter.js";
import type { RecordOf } from "./verb.js";

export const clone: RecordOf<"clone"> = {
  kind: "action",
  // Scoped by the source: a clone copies its disks, so `clone` reaches own and team VMs, `clone:any` every VM.
  ids: ["clone"],
  label: () => "vm.clone",
  vm: (cmd) => cmd.name,
  precheck: (policy, cmd) => checkNewVm(policy, cmd, false),
  target: (cmd) => ({ vm: cmd.source, id: "clone" }),
  newTeam: (cmd) => cmd.team,
  // A clone is as big as its source (when the look-up answered in time; vm-lifecycle checks again with it).
  approvalFacts: (cmd, { vm }) => ({ command: "clone", vm: cmd.name, ...(vm ? { cpu: vm.numCpu, memoryGB: vm.memoryMB / 1024 } : {}), ...(cmd.leaseMs !== undefined ? { leaseMs: cmd.leaseMs } : {}) }),
  command: (cmd, base) => VmCommandSchema.parse({ ...base, ...inVcenter(cmd.vcenter), area: "vm", action: "clone", source: cmd.source, name: cmd.name, ...(cmd.team ? { team: cmd.team } : {}), ...leaseOf(cmd) }),
  doing: (cmd) => `Cloning ${code(cmd.source)} to ${code(cmd.name)}${inWords(cmd.vcenter)}${newVmSuffix({ team: cmd.team })}`,
};
