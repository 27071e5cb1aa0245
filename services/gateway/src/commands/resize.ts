import { VmCommandSchema } from "@iaas/contracts";
import { code } from "../presentation/mrkdwn.js";
import { inVcenter } from "@iaas/runtime";
import { inWords } from "./vcenter.js";
import type { RecordOf } from "./verb.js";

export const resize: RecordOf<"resize"> = {
  kind: "action",
  ids: ["resize"],
  label: () => "vm.resize",
  vm: (cmd) => cmd.vm,
  precheck: (policy, cmd) => {
    policy.checkProtected("resize", { name: cmd.vm });
    // Against the smallest VM: the real current size is vm-lifecycle's to check.
    policy.checkResize({ cpu: 1, memoryGB: 1 }, { cpu: cmd.cpu, memoryGB: cmd.memoryGB }, cmd.vcenter);
  },
  target: (cmd) => ({ vm: cmd.vm, id: "resize" }),
  // What the VM ends with: the values asked for, the rest as it is.
  approvalFacts: (cmd, { vm }) => ({ command: "resize", vm: cmd.vm, cpu: cmd.cpu ?? vm?.numCpu, memoryGB: cmd.memoryGB ?? (vm ? vm.memoryMB / 1024 : undefined) }),
  command: (cmd, base) =>
    VmCommandSchema.parse({ ...base, ...inVcenter(cmd.vcenter), area: "vm", action: "resize", vm: cmd.vm, ...(cmd.cpu !== undefined ? { cpu: cmd.cpu } : {}), ...(cmd.memoryGB !== undefined ? { memoryGB: cmd.memoryGB } : {}) }),
  doing: (cmd) => {
    const to = [cmd.cpu !== undefined ? `${cmd.cpu} vCPU` : undefined, cmd.memoryGB !== undefined ? `${cmd.memoryGB} GB memory` : undefined].filter(Boolean).join(", ");
    return `Resizing ${code(cmd.vm)}${inWords(cmd.vcenter)} to ${to}`;
  },
};
