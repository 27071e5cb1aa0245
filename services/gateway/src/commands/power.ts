import { CommandAreas, PowerCommandSchema, type PowerAction } from "@iaas/contracts";
import { commandIdOf } from "@iaas/policy";
import { inVcenter } from "@iaas/runtime";
import { code } from "../presentation/mrkdwn.js";
import { inWords } from "./vcenter.js";
import type { RecordOf } from "./verb.js";

const DOING: Record<PowerAction, string> = {
  on: "Powering on",
  off: "Powering off",
  reset: "Resetting",
  suspend: "Suspending",
  shutdown: "Shutting down the guest OS of",
  reboot: "Rebooting the guest OS of",
};

export const power: RecordOf<"power"> = {
  kind: "action",
  // Each action is its own policy command: `power.off` does not grant `power.on`.
  ids: CommandAreas.power.map((a) => commandIdOf("power", a)),
  grants: (cmd) => [commandIdOf("power", cmd.action)],
  label: (cmd) => `power.${cmd.action}`,
  vm: (cmd) => cmd.vm,
  precheck: (policy, cmd) => policy.checkProtected(commandIdOf("power", cmd.action), { name: cmd.vm }),
  target: (cmd) => ({ vm: cmd.vm, id: commandIdOf("power", cmd.action) }),
  command: (cmd, base) => PowerCommandSchema.parse({ ...base, ...inVcenter(cmd.vcenter), area: "power", action: cmd.action, vm: cmd.vm }),
  doing: (cmd) => `${DOING[cmd.action]} ${code(cmd.vm)}${inWords(cmd.vcenter)}`,
};
