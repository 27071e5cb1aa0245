import { VmCommandSchema } from "@iaas/contracts";
import { code } from "../presentation/mrkdwn.js";
import type { RecordOf } from "./verb.js";

export const deploy: RecordOf<"deploy"> = {
  kind: "action",
  ids: ["deploy"],
  label: () => "vm.deploy",
  vm: (cmd) => cmd.name,
  precheck: (policy, cmd) => {
    policy.checkName(cmd.name);
    policy.resolveSize(cmd.size);
  },
  command: (cmd, base) => VmCommandSchema.parse({ ...base, area: "vm", action: "deploy", template: cmd.template, name: cmd.name, ...(cmd.size ? { size: cmd.size } : {}) }),
  doing: (cmd) => `Deploying ${code(cmd.template)} as ${code(cmd.name)}${cmd.size ? ` (${code(cmd.size)})` : ""}`,
};
