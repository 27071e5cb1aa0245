import { IaasError, ProxyEndpoints } from "@iaas/contracts";
import { inVcenter } from "@iaas/runtime";
import { LIST_CAP, listMessage, type ListedVm } from "../presentation/views.js";
import { code, escape } from "../presentation/mrkdwn.js";
import type { RecordOf } from "./verb.js";

export const list: RecordOf<"list"> = {
  kind: "remote",
  // `list` shows the actor's own and team VMs; `list:any` lets `list all` show every VM.
  ids: ["list"],
  answer: async (cmd, { ask, policy, actor, teams, vcenters }) => {
    if (cmd.all && policy.scopeOf(actor, "list") !== "any") {
      throw new IaasError("IAAS_NOT_ALLOWED", "You may not list every VM (`list all` needs `list:any`, which IT admins have); `/iaas list` shows your and your team's VMs.");
    }
    // The proxy filters by owner and team (custom attributes) and by the pattern, and sends the
    // first LIST_CAP matches with their count: VMs outside the scope, or past what the reply shows,
    // never leave it, whatever the inventory's size.
    const scope = cmd.all ? {} : { scope: { owner: actor.userId, teams: teams() } };
    const req = { ...scope, ...(cmd.glob !== undefined ? { glob: cmd.glob } : {}), limit: LIST_CAP };
    const kind = cmd.all ? "all" : "own";
    if (vcenters.length <= 1) {
      const { vms, total } = await ask(ProxyEndpoints.vmList, { ...req, ...inVcenter(cmd.vcenter) });
      return listMessage(vms, cmd.glob, kind, total ?? vms.length);
    }
    // Several vCenters: each is asked (or only the one `vc=` names), and every VM says which it is
    // in. A vCenter that cannot be read is named under the list; if none can, the list fails.
    const ids = cmd.vcenter !== undefined ? [cmd.vcenter] : vcenters;
    const answers = await Promise.allSettled(ids.map((id) => ask(ProxyEndpoints.vmList, { ...req, ...inVcenter(id === "default" ? undefined : id) })));
    const vms: ListedVm[] = [];
    const unread: string[] = [];
    let total = 0;
    answers.forEach((a, i) => {
      const id = ids[i]!;
      if (a.status === "rejected") {
        unread.push(`vCenter ${code(id)} could not be read (${escape(IaasError.from(a.reason).message)}); its VMs are not in this list.`);
        return;
      }
      vms.push(...a.value.vms.map((v) => ({ ...v, vcenter: id })));
      total += a.value.total ?? a.value.vms.length;
    });
    if (unread.length === ids.length) throw IaasError.from((answers[0] as PromiseRejectedResult).reason);
    // By name as the proxy sorts one vCenter's, then in the order of the vCenters.
    vms.sort((a, b) => a.name.localeCompare(b.name) || ids.indexOf(a.vcenter!) - ids.indexOf(b.vcenter!));
    return listMessage(vms.slice(0, LIST_CAP), cmd.glob, kind, total, unread);
  },
};
