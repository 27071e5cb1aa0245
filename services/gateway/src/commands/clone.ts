import { VmCommandSchema } from "@iaas/contracts";
import { code } from "../presentation/mrkdwn.js";
import type { RecordOf } from "./verb.js";

export const clone: RecordOf<"clone"> = {
  kind: "action",
  ids: ["clone"],
  label: () => "vm.clone",
  vm: (cmd) => cmd.name,
  precheck: (policy, cmd) => policy.checkName(cmd.name),
  command: (cmd, base) => VmCommandSchema.parse({ ...base, area: "vm", action: "clone", source: cmd.source, name: cmd.name }),
  doing: (cmd) => `Cloning ${code(cmd.source)} to ${code(cmd.name)}`,
};
