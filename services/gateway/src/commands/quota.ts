import { ProxyEndpoints } from "@iaas/contracts";
import { NO_USAGE } from "@iaas/policy";
import { quotaKey } from "@iaas/runtime";
import { quotaMessage, type QuotaLine } from "../presentation/views.js";
import type { RecordOf } from "./verb.js";

/** At most this many of the caller's teams are shown (one vm-usage call each). */
const MAX_TEAMS = 10;

export const quota: RecordOf<"quota"> = {
  kind: "remote",
  ids: ["quota"],
  answer: async (_cmd, { policy, actor, ask, held }) => {
    const teams = policy.teamsOf(actor).slice(0, MAX_TEAMS);
    const [mine, ...theirs] = await Promise.all([
      (async (): Promise<QuotaLine> => {
        const [{ owner }, h] = await Promise.all([ask(ProxyEndpoints.vmUsage, { owner: actor.userId }), held(quotaKey.user(actor.userId))]);
        return { kind: "user", id: actor.userId, used: owner ?? NO_USAGE, held: h, limits: policy.quotaOf("user", actor.userId) };
      })(),
      ...teams.map(async (team): Promise<QuotaLine> => {
        const [u, h] = await Promise.all([ask(ProxyEndpoints.vmUsage, { team }), held(quotaKey.team(team))]);
        return { kind: "team", id: team, used: u.team ?? NO_USAGE, held: h, limits: policy.quotaOf("team", team) };
      }),
    ]);
    return quotaMessage(mine!, theirs);
  },
};
