import { IaasError } from "@iaas/contracts";
import type { Policy } from "@iaas/policy";
import { plainCode } from "../presentation/mrkdwn.js";

/**
 * Throws IAAS_INVALID_ARGUMENT unless `team` can be a VM's team: any Slack user group, or a team
 * the policy defines (listing them).
 */
export function checkTeam(policy: Policy, team: string | undefined): void {
  if (team === undefined || policy.isKnownTeam(team)) return;
  const known = Object.keys(policy.document.teams);
  throw new IaasError(
    "IAAS_INVALID_ARGUMENT",
    `There is no team ${plainCode(team)}: mention a Slack user group (\`@platform\`)${known.length ? ` or name a team of the policy: ${known.map((t) => `\`${t}\``).join(", ")}` : "; the policy names no teams"}.`,
  );
}
