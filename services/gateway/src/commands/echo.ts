import { echoMessage } from "../presentation/views.js";
import { parseCommand } from "./parse.js";
import type { RecordOf } from "./verb.js";

export const echo: RecordOf<"echo"> = {
  kind: "local",
  ids: ["echo"],
  answer: async (cmd, { policy, actor, id, audit }) => {
    const parsed = cmd.text === undefined ? undefined : parseCommand(cmd.text);
    audit.succeeded("echo", undefined, "echo answered");
    return echoMessage(cmd.text, parsed, actor, policy.rolesOf(actor), id);
  },
};
