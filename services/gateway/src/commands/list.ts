import { IaasError, ProxyEndpoints } from "@iaas/contracts";
import { LIST_CAP, listMessage } from "../presentation/views.js";
import type { RecordOf } from "./verb.js";

export const list: RecordOf<"list"> = {
  kind: "remote",
  // `list` shows the actor's own and team VMs; `list:any` lets `list all` show every VM.
  ids: ["list"],
  answer: async (cmd, { ask, policy, actor, teams }) => {
    if (cmd.all && policy.scopeOf(actor, "list") !== "any") {
      throw new IaasError("IAAS_NOT_ALLOWED", "You may not list every VM (`list all` needs `list:any`, which IT admins have); `/iaas list` shows your and your team's VMs.");
    }
    // The proxy filters by owner and team (custom attributes) and by the pattern, and sends the
    // first LIST_CAP matches with their count: VMs outside the scope, or past what the reply shows,
    // never leave it, whatever the inventory's size.
    const scope = cmd.all ? {} : { scope: { owner: actor.userId, teams: teams() } };
    const { vms, total } = await ask(ProxyEndpoints.vmList, { ...scope, ...(cmd.glob !== undefined ? { glob: cmd.glob } : {}), limit: LIST_CAP });
    return listMessage(vms, cmd.glob, cmd.all ? "all" : "own", total ?? vms.length);
  },
};
