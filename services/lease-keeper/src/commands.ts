import { IaasError, ProxyEndpoints, formatDuration, quote, type LeaseCommand, type VmSummary } from "@iaas/contracts";
import type { Policy } from "@iaas/policy";
import { inVcenter, readVmForGuard, requestJson, requireApproval, type CommandContext, type CommandOutcome, type Granted, type KV, type NatsConnection } from "@iaas/runtime";

export interface LeaseCommandDeps {
  nc: NatsConnection;
  policy: Policy;
  /** Timeout of the look-ups and of a power-on. */
  proxyTimeoutMs: number;
  /** The `iaas_approvals` bucket (read only): an extend past the max runs only with its approved record. Undefined before start. */
  approvals: () => KV | undefined;
}

const utc = (iso: string) => `${iso.slice(0, 16).replace("T", " ")} UTC`;

/** The lease's length an extend asks for: `durationMs`, else the policy's default. */
export const extendMsOf = (policy: Policy, cmd: Extract<LeaseCommand, { action: "extend" }>) => cmd.durationMs ?? policy.leases.default;

/**
 * The policy, where the lease changes: the same rules the gateway applied, for a command that
 * may also come straight from NATS.
 * - extend: `lease.extend` on this VM (owner, team, or `:any`), a VM with a lease (IAAS_NO_LEASE
 *   otherwise; a hand-edited attribute says so), at most `leases.max` without an approval (an
 *   approval rule matches and the command carries no `approvalId`: IAAS_APPROVAL_REQUIRED), and
 *   `power.on` on it as well when it asks to power the VM on;
 * - set: `lease.set` (admins by default) on any VM, templates refused by the proxy.
 */
export async function authorizeLeaseCommand(d: LeaseCommandDeps, cmd: LeaseCommand): Promise<Granted | undefined> {
  const { policy } = d;
  if (!policy.leases.enabled) throw new IaasError("IAAS_INVALID_ARGUMENT", "Leases are off in this policy: VMs have no end date, so there is nothing to extend or set.");
  const call = { timeoutMs: d.proxyTimeoutMs, requestId: cmd.id };
  if (cmd.action === "set") {
    policy.authorize(cmd.actor, "lease.set");
    const vm = await readVmForGuard(d.nc, cmd.vm, call, cmd.vcenter);
    policy.authorizeOn(cmd.actor, "lease.set", vm);
    return undefined;
  }
  policy.authorize(cmd.actor, "lease.extend");
  const vm = await readVmForGuard(d.nc, cmd.vm, call, cmd.vcenter);
  policy.authorizeOn(cmd.actor, "lease.extend", vm);
  if (cmd.powerOn) policy.authorizeOn(cmd.actor, "power.on", vm);
  checkHasLease(vm);
  const ms = extendMsOf(policy, cmd);
  const match = policy.approvalFor({ command: "lease.extend", vm: vm.name, leaseMs: ms });
  if (!match) return undefined;
  if (cmd.approvalId === undefined) {
    throw new IaasError("IAAS_APPROVAL_REQUIRED", `A lease of ${formatDuration(ms)} needs an approval (${match.why}); without one, \`extend ${vm.name}\` goes up to ${formatDuration(policy.leases.max)}.`);
  }
  // With an approval id: the approved record must be for exactly this command.
  const kv = d.approvals();
  if (!kv) throw new Error("lease-keeper not started");
  return requireApproval({ kv, command: cmd, match });
}

/** An extend needs a lease to extend: a VM without one gets one from an admin (`lease <vm> set`). */
export function checkHasLease(vm: VmSummary): void {
  if (vm.leaseExpires) return;
  if (vm.leaseInvalid !== undefined) {
    throw new IaasError("IAAS_NO_LEASE", `\`${vm.name}\` has no lease that can be read: its attribute iaas.lease.expires holds \`${vm.leaseInvalid.slice(0, 40)}\`, not a time. An IT admin sets one with \`/iaas lease ${vm.name} set 30d\`.`);
  }
  throw new IaasError("IAAS_NO_LEASE", `\`${vm.name}\` has no lease, so there is nothing to extend. An IT admin gives it one with \`/iaas lease ${vm.name} set 30d\`.`);
}

/**
 * Sets the lease: the new end is the duration from the command's `issuedAt` (a redelivery writes
 * the same time), or none (`set` with null). An extend with `powerOn` also powers the VM on
 * (after the lease is moved, so the keeper does not power it off again).
 */
export async function runLeaseCommand(d: LeaseCommandDeps, cmd: LeaseCommand, ctx: CommandContext): Promise<CommandOutcome> {
  const call = { timeoutMs: d.proxyTimeoutMs, requestId: cmd.id, traceparent: ctx.traceparent };
  const ms = cmd.action === "extend" ? extendMsOf(d.policy, cmd) : cmd.durationMs;
  const expires = ms === null ? null : new Date(Date.parse(cmd.issuedAt) + ms).toISOString();
  const { vm, changed } = await requestJson(d.nc, ProxyEndpoints.vmSetLease, { vm: cmd.vm, ...inVcenter(cmd.vcenter), expires }, call);
  if (expires === null) {
    return { message: changed ? `${quote(vm.name)} has no lease now: it stays until someone deletes it.` : `${quote(vm.name)} had no lease; nothing changed.`, facts: { code: changed ? "done" : "unchanged", vm: vm.name, ...inVcenter(cmd.vcenter), leaseExpires: null }, vm };
  }
  let powered = "";
  if (cmd.action === "extend" && cmd.powerOn && vm.powerState !== "poweredOn") {
    const on = await requestJson(d.nc, ProxyEndpoints.vmPower, { vm: cmd.vm, ...inVcenter(cmd.vcenter), action: "on", timeoutMs: d.proxyTimeoutMs }, { ...call, timeoutMs: d.proxyTimeoutMs + 5_000 });
    powered = on.vm.powerState === "poweredOn" ? " It is powered on again." : "";
  }
  const left = formatDuration(Date.parse(expires) - Date.now());
  return {
    message: `The lease of ${quote(vm.name)} now ends ${utc(expires)} (in ${left}).${powered}`,
    facts: { code: changed || powered ? "done" : "unchanged", vm: vm.name, ...inVcenter(cmd.vcenter), leaseExpires: expires },
    vm: powered ? { ...vm, powerState: "poweredOn" } : vm,
  };
}
