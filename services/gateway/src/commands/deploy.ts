import { VmCommandSchema } from "@iaas/contracts";
import { teamLabel } from "@iaas/policy";
import { code } from "../presentation/mrkdwn.js";
import { checkTeam } from "./team.js";
import type { RecordOf } from "./verb.js";

export const deploy: RecordOf<"deploy"> = {
  kind: "action",
  ids: ["deploy"],
  label: () => "vm.deploy",
  vm: (cmd) => cmd.name,
  precheck: (policy, cmd) => {
    policy.checkName(cmd.name);
    policy.resolveSize(cmd.size);
    checkTeam(policy, cmd.team);
  },
  newTeam: (cmd) => cmd.team,
  command: (cmd, base) =>
    VmCommandSchema.parse({ ...base, area: "vm", action: "deploy", template: cmd.template, name: cmd.name, ...(cmd.size ? { size: cmd.size } : {}), ...(cmd.team ? { team: cmd.team } : {}) }),
  doing: (cmd) => `Deploying ${code(cmd.template)} as ${code(cmd.name)}${cmd.size ? ` (${code(cmd.size)})` : ""}${cmd.team ? ` for ${teamLabel(cmd.team)}` : ""}`,
};
