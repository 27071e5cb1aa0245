import { VmCommandSchema } from "@iaas/contracts";
import { code } from "../presentation/mrkdwn.js";
import type { RecordOf } from "./verb.js";

export const create: RecordOf<"create"> = {
  kind: "action",
  ids: ["create"],
  label: () => "vm.create",
  vm: (cmd) => cmd.name,
  precheck: (policy, cmd) => {
    policy.checkName(cmd.name);
    policy.resolveSize(cmd.size);
  },
  command: (cmd, base) => VmCommandSchema.parse({ ...base, area: "vm", action: "create", name: cmd.name, ...(cmd.size ? { size: cmd.size } : {}) }),
  doing: (cmd) => `Creating ${code(cmd.name)}${cmd.size ? ` (${code(cmd.size)})` : ""}`,
};
