import { ProxyEndpoints } from "@iaas/contracts";
import { NO_USAGE } from "@iaas/policy";
import { inVcenter, quotaKey, sumUsageAnswers } from "@iaas/runtime";
import { quotaMessage, type QuotaLine } from "../presentation/views.js";
import type { RecordOf } from "./verb.js";

/** At most this many of the caller's teams are shown (one vm-usage call each). */
const MAX_TEAMS = 10;

export const quota: RecordOf<"quota"> = {
  kind: "remote",
  ids: ["quota"],
  answer: async (_cmd, { policy, actor, ask, held, vcenters }) => {
    // A quota holds for every vCenter at once: what the VMs use is summed over all of them.
    const usage = async (q: { owner?: string; team?: string }) => {
      return sumUsageAnswers(await Promise.all(vcenters.map((id) => ask(ProxyEndpoints.vmUsage, { ...q, ...inVcenter(id === "default" ? undefined : id) }))));
    };
    const teams = policy.teamsOf(actor).slice(0, MAX_TEAMS);
    const [mine, ...theirs] = await Promise.all([
      (async (): Promise<QuotaLine> => {
        const [{ owner }, h] = await Promise.all([usage({ owner: actor.userId }), held(quotaKey.user(actor.userId))]);
        return { kind: "user", id: actor.userId, used: owner ?? NO_USAGE, held: h, limits: policy.quotaOf("user", actor.userId) };
      })(),
      ...teams.map(async (team): Promise<QuotaLine> => {
        const [u, h] = await Promise.all([usage({ team }), held(quotaKey.team(team))]);
        return { kind: "team", id: team, used: u.team ?? NO_USAGE, held: h, limits: policy.quotaOf("team", team) };
      }),
    ]);
    return quotaMessage(mine!, theirs);
  },
};
