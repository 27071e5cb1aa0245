import { ProxyEndpoints } from "@iaas/contracts";
import { templatesMessage } from "../presentation/views.js";
import type { RecordOf } from "./verb.js";

export const templates: RecordOf<"templates"> = {
  kind: "remote",
  ids: ["templates"],
  answer: async (_cmd, { ask }) => templatesMessage((await ask(ProxyEndpoints.templateList, {})).templates),
};
