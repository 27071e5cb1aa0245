import { IaasError, ProxyEndpoints } from "@iaas/contracts";
import { compileGlob } from "@iaas/policy";
import { listMessage } from "../presentation/views.js";
import type { RecordOf } from "./verb.js";

export const list: RecordOf<"list"> = {
  kind: "remote",
  // `list` shows the actor's own and team VMs; `list:any` lets `list all` show every VM.
  ids: ["list"],
  answer: async (cmd, { ask, policy, actor, teams }) => {
    if (cmd.all && policy.scopeOf(actor, "list") !== "any") {
      throw new IaasError("IAAS_NOT_ALLOWED", "You may not list every VM (`list all` needs `list:any`, which IT admins have); `/iaas list` shows your and your team's VMs.");
    }
    // The proxy filters by owner and team (custom attributes): VMs outside the scope never leave it.
    const { vms } = await ask(ProxyEndpoints.vmList, cmd.all ? {} : { scope: { owner: actor.userId, teams: teams() } });
    // Linear in pattern × name (no RegExp backtracking), case-insensitive as vCenter's own search.
    const glob = cmd.glob === undefined ? undefined : compileGlob(cmd.glob, { caseInsensitive: true });
    return listMessage(glob ? vms.filter((v) => glob.test(v.name)) : vms, cmd.glob, cmd.all ? "all" : "own");
  },
};
