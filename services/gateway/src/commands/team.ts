import { IaasError } from "@iaas/contracts";
import { teamLabel, type Policy } from "@iaas/policy";
import { code, plainCode } from "../presentation/mrkdwn.js";

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

/**
 * What the gateway checks of a new VM (create, clone, deploy) from the command alone: the naming
 * rule, the size when the verb takes one (within the limits of the command's vCenter), and the team.
 */
export function checkNewVm(policy: Policy, cmd: { name: string; size?: string | undefined; team?: string | undefined; leaseMs?: number | undefined; vcenter?: string | undefined }, sized: boolean): void {
  policy.checkName(cmd.name);
  // The size in its vCenter's limits (vcenters.<id>.limits), which may be smaller than the ones every size fits.
  if (sized) policy.checkSizeIn(policy.resolveSize(cmd.size), cmd.vcenter);
  checkTeam(policy, cmd.team);
  if (cmd.leaseMs !== undefined && !policy.leases.enabled) throw new IaasError("IAAS_INVALID_ARGUMENT", "Leases are off in this policy: leave out `lease=`.");
}

/** `leaseMs` for a command, when `lease=` was given. */
export const leaseOf = (cmd: { leaseMs?: number | undefined }) => (cmd.leaseMs !== undefined ? { leaseMs: cmd.leaseMs } : {});

/** The end of a new VM's "Creating …" line: its size and team, when given. */
export function newVmSuffix(cmd: { size?: string | undefined; team?: string | undefined }): string {
  return `${cmd.size ? ` (${code(cmd.size)})` : ""}${cmd.team ? ` for ${teamLabel(cmd.team)}` : ""}`;
}
