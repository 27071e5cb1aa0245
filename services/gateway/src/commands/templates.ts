import { ProxyEndpoints } from "@iaas/contracts";
import { templatesMessage } from "../presentation/views.js";
import { inVcenter } from "@iaas/runtime";
import type { RecordOf } from "./verb.js";

export const templates: RecordOf<"templates"> = {
  kind: "remote",
  ids: ["templates"],
  answer: async (cmd, { ask }) => templatesMessage((await ask(ProxyEndpoints.templateList, { ...inVcenter(cmd.vcenter) })).templates),
};
