import { IaasError } from "@iaas/contracts";
import { helpMessage } from "../presentation/views.js";
import { Verbs } from "./parse.js";
import type { RecordOf } from "./verb.js";

export const help: RecordOf<"help"> = {
  kind: "local",
  ids: ["help"],
  answer: async (cmd, { mayRun, scopeOf, vcenters }) => {
    if (cmd.topic && !mayRun(cmd.topic)) {
      throw new IaasError("IAAS_NOT_ALLOWED", `You are not allowed to run \`${cmd.topic}\`; \`/iaas help\` lists the commands you can run.`);
    }
    return helpMessage(Verbs.filter(mayRun), cmd.topic, scopeOf, vcenters);
  },
};
