import { IaasError, ProxyEndpoints, formatDuration, type Actor, type Usage, type VmCommand } from "@iaas/contracts";
import { commandIdOf, teamLabel, type ApprovalFacts, type Policy } from "@iaas/policy";
import { guardRead, inVcenter, readVmForGuard, requestJson, requireApproval, shareOfSize, shareOfSource, type Granted, type KV, type NatsConnection } from "@iaas/runtime";
import type { VmQuota } from "./quota.js";

export interface GuardDeps {
  nc: NatsConnection;
  policy: Policy;
  /** Timeout of the look-ups the guard makes (vm-get, vm-info, vm-usage): reads, so short. */
  lookupTimeoutMs: number;
  /** The quota reservations (`iaas_quotas`) a create, clone or deploy takes its share in. */
  quota: Pick<VmQuota, "reserve">;
  /** The `iaas_approvals` bucket (read only): the records of approved requests. */
  approvals: KV;
}

type Call = { timeoutMs: number; requestId: string };

/**
 * The policy, enforced where the work happens: the gateway checked the same rules before it
 * published, but a command may also arrive straight from NATS (an operator, a script), and it
 * must get the same answer. Runs in the consumer's `authorize` hook, before anything changes.
 *
 * - every command: the actor's roles grant it; one that names a VM, on that VM (its owner and
 *   team as vCenter records them; unowned VMs are admin-only); clone on its source;
 * - create, clone, deploy: the naming rule, the size (create, deploy), the team (known, and the
 *   actor's own unless an admin), and the quotas of the owner and the team;
 * - delete, resize, owner: the VM is not protected (name and, resolved in vCenter, its folder;
 *   a folder that cannot be read refuses);
 * - resize: values within the policy's limits; owner: not a template, someone to give it to;
 * - create, clone, deploy, delete, resize: when an `approvals` rule matches (with the same facts
 *   the gateway gives it), an approved request for exactly this command (`approvalId`), else
 *   IAAS_APPROVAL_REQUIRED; a request over quota runs only under a `quotaOverrun` rule's approval.
 * Answers the approval it runs under, if any.
 */
export async function authorizeVmCommand(d: GuardDeps, cmd: VmCommand): Promise<Granted | undefined> {
  const { policy } = d;
  const actor = cmd.actor;
  const via = actor.via;
  const call: Call = { timeoutMs: d.lookupTimeoutMs, requestId: cmd.id };
  switch (cmd.action) {
    case "create":
    case "deploy": {
      policy.authorize(actor, commandIdOf("vm", cmd.action));
      policy.checkName(cmd.name);
      const size = policy.resolveSize(cmd.size);
      // A vCenter's own limits may be smaller than the ones every size fits.
      policy.checkSizeIn(size, cmd.vcenter);
      checkTeam(policy, actor, cmd.team);
      const facts: ApprovalFacts = { command: cmd.action, vm: cmd.name, size, cpu: size.cpu, memoryGB: size.memoryGB, leaseMs: cmd.leaseMs };
      const granted = await approved(d, cmd, facts);
      return (await checkVmQuota(d, { commandId: cmd.id, actor, name: cmd.name, team: cmd.team, request: shareOfSize(size), call, command: cmd, facts })) ?? granted;
    }
    case "clone": {
      policy.authorize(actor, "clone");
      policy.checkName(cmd.name);
      checkTeam(policy, actor, cmd.team);
      checkLease(policy, cmd);
      // A clone is as big as its source: vm-info has the disks vm-get leaves out.
      const source = await guardRead(cmd.source, async () => (await requestJson(d.nc, ProxyEndpoints.vmInfo, { vm: cmd.source, ...inVcenter(cmd.vcenter) }, call)).vm);
      policy.authorizeOn(actor, "clone", source);
      const facts: ApprovalFacts = { command: "clone", vm: cmd.name, cpu: source.numCpu, memoryGB: source.memoryMB / 1024, leaseMs: cmd.leaseMs };
      const granted = await approved(d, cmd, facts);
      return (await checkVmQuota(d, { commandId: cmd.id, actor, name: cmd.name, team: cmd.team, request: shareOfSource(source), call, command: cmd, facts })) ?? granted;
    }
    case "delete": {
      policy.authorize(actor, "delete");
      policy.checkProtected("delete", { name: cmd.vm }, { via });
      const vm = await lookup(d, cmd.vm, call, cmd.vcenter);
      // Gone already: a redelivery whose first attempt deleted it, or a name that never existed.
      // Nothing can be deleted either way; the handler tells the two apart.
      if (!vm) return undefined;
      policy.authorizeOn(actor, "delete", vm);
      policy.checkProtected("delete", { name: vm.name, path: vm.path }, { via, resolved: true });
      return approved(d, cmd, { command: "delete", vm: cmd.vm });
    }
    case "resize": {
      policy.authorize(actor, "resize");
      policy.checkProtected("resize", { name: cmd.vm }, { via });
      // Limits first: they need no look-up, and the answer is the same whatever the VM.
      policy.checkResize({ cpu: 1, memoryGB: 1 }, { cpu: cmd.cpu, memoryGB: cmd.memoryGB }, cmd.vcenter);
      // Not found or ambiguous: the proxy's own words (they name the path form to use).
      const vm = await readVmForGuard(d.nc, cmd.vm, call, cmd.vcenter);
      policy.authorizeOn(actor, "resize", vm);
      policy.checkProtected("resize", { name: vm.name, path: vm.path }, { via, resolved: true });
      return approved(d, cmd, { command: "resize", vm: cmd.vm, cpu: cmd.cpu ?? vm.numCpu, memoryGB: cmd.memoryGB ?? vm.memoryMB / 1024 });
    }
    case "owner": {
      policy.authorize(actor, "owner");
      if (cmd.owner === undefined && cmd.team === undefined) {
        throw new IaasError("IAAS_INVALID_ARGUMENT", "Say who gets the VM: an `owner` (a Slack user) or a `team` (or both).");
      }
      if (cmd.team !== undefined && cmd.team !== null && !policy.isKnownTeam(cmd.team)) {
        throw new IaasError("IAAS_INVALID_ARGUMENT", `\`team=${cmd.team}\` is not a team: use a Slack user group or one of the policy's teams${knownTeams(policy)}.`);
      }
      policy.checkProtected("owner", { name: cmd.vm }, { via });
      const vm = await readVmForGuard(d.nc, cmd.vm, call, cmd.vcenter);
      if (vm.template) throw new IaasError("IAAS_INVALID_ARGUMENT", `\`${vm.name}\` is a template: templates have no owner or team; deploy it to get a VM.`);
      policy.authorizeOn(actor, "owner", vm);
      policy.checkProtected("owner", { name: vm.name, path: vm.path }, { via, resolved: true });
      return undefined;
    }
  }
}

/** The approval `facts` need (none: undefined), checked against the record the command names. */
function approved(d: GuardDeps, cmd: VmCommand, facts: ApprovalFacts): Promise<Granted | undefined> {
  return requireApproval({ kv: d.approvals, command: cmd, match: d.policy.approvalFor(facts) });
}

/**
 * The quota check of a create, clone or deploy, and its reservation: what the owner's VMs (and
 * the team's, when the new VM has one) use, as vcenter-proxy counts them, plus what other
 * requests in flight hold, plus `request`, within the policy's quotas; the share is then held
 * under the command id until the command ends (quota.ts). The gateway reserved the same share for
 * a command from Slack, so this is a no-op then; for one published on NATS it is the check.
 * A VM of the new name already there is either this command's own, made by an earlier delivery
 * (the proxy returns it instead of making another, so nothing new is used), or someone else's,
 * which the proxy refuses as a duplicate: either way there is nothing to count.
 */
export async function checkVmQuota(
  d: GuardDeps,
  q: { commandId: string; actor: Actor; name: string; team?: string | undefined; request: Usage; call: Call; command: VmCommand; facts: ApprovalFacts },
): Promise<Granted | undefined> {
  if (await lookup(d, q.name, q.call, q.command.vcenter)) return undefined;
  try {
    await d.quota.reserve(q);
    // Approved under a `quotaOverrun` rule, the gateway took the share (unchecked) before it
    // published, so the reservation above finds it held: the approval the command names is
    // checked and recorded all the same, for the result and the audit record.
    const overrun = (q.command as { approvalId?: string }).approvalId === undefined ? undefined : d.policy.approvalFor({ ...q.facts, overQuota: true });
    return overrun?.rule.when.quotaOverrun ? await requireApproval({ kv: d.approvals, command: q.command, match: overrun }) : undefined;
  } catch (err) {
    // Over quota: it may still run under the approval of a `quotaOverrun` rule, which lets an
    // approver allow what the quota alone would refuse; the share is then taken unchecked.
    if (!(err instanceof IaasError) || err.code !== "IAAS_QUOTA_EXCEEDED") throw err;
    const match = d.policy.approvalFor({ ...q.facts, overQuota: true });
    if (!match?.rule.when.quotaOverrun) throw err;
    const granted = await requireApproval({ kv: d.approvals, command: q.command, match });
    await d.quota.reserve({ ...q, unchecked: true });
    return granted;
  }
}

/** `team=` of a create, clone or deploy: a team that exists, and one of the actor's own unless they are an admin. */
function checkTeam(policy: Policy, actor: Actor, team: string | undefined): void {
  if (team === undefined) return;
  if (!policy.isKnownTeam(team)) {
    throw new IaasError("IAAS_INVALID_ARGUMENT", `\`team=${team}\` is not a team: use a Slack user group or one of the policy's teams${knownTeams(policy)}.`);
  }
  if (policy.scopeOf(actor, "owner") !== "any" && !policy.teamsOf(actor).includes(team)) {
    throw new IaasError("IAAS_NOT_ALLOWED", `\`team=${team}\`: you are not in ${teamLabel(team)}, so you cannot give it a VM. Ask an IT admin.`);
  }
}

/**
 * `lease=` of a create, clone or deploy: refused when the policy has leases off, and one longer
 * than `leases.max` needs an approval (an approval rule on the lease matches and the command
 * carries none). The approval's own record is the approval flow's to check.
 */
export function checkLease(policy: Policy, cmd: { action: "create" | "clone" | "deploy"; name: string; leaseMs?: number | undefined; approvalId?: string | undefined }): void {
  if (cmd.leaseMs === undefined) return;
  if (!policy.leases.enabled) throw new IaasError("IAAS_INVALID_ARGUMENT", "Leases are off in this policy: leave out `lease=`.");
  if (cmd.leaseMs <= policy.leases.max || cmd.approvalId !== undefined) return;
  const match = policy.approvalFor({ command: cmd.action, leaseMs: cmd.leaseMs });
  if (match) throw new IaasError("IAAS_APPROVAL_REQUIRED", `A lease of ${formatDuration(cmd.leaseMs)} needs an approval (${match.why}); the most without one is ${formatDuration(policy.leases.max)}.`);
}

function knownTeams(policy: Policy): string {
  const names = Object.keys(policy.document.teams);
  return names.length ? ` (${names.map((n) => `\`${n}\``).join(", ")})` : "";
}

/** The VM, or undefined when there is none of that name; every other failure as readVmForGuard leaves it. */
async function lookup(d: GuardDeps, vm: string, call: Call, vcenter: string | undefined) {
  try {
    return await readVmForGuard(d.nc, vm, call, vcenter);
  } catch (err) {
    if (err instanceof IaasError && err.code === "IAAS_VM_NOT_FOUND") return undefined;
    throw err;
  }
}
