import { ProxyEndpoints } from "@iaas/contracts";
import { infoMessage } from "../presentation/views.js";
import type { RecordOf } from "./verb.js";

export const info: RecordOf<"info"> = {
  kind: "remote",
  ids: ["info"],
  vm: (cmd) => cmd.vm,
  answer: async (cmd, { ask }) => infoMessage((await ask(ProxyEndpoints.vmInfo, { vm: cmd.vm })).vm),
};
