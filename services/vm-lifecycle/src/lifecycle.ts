import { IaasError, PowerStateWords, ProxyEndpoints, describeVm, formatDuration, formatMemory, quote, type Placement, type ResultFacts, type VmCommand, type VmSummary } from "@iaas/contracts";
import { describeSize, teamLabel, type NamedSize, type Policy } from "@iaas/policy";
import { inVcenter, requestJson, type CommandContext, type CommandOutcome, type NatsConnection } from "@iaas/runtime";

export interface LifecycleDeps {
  nc: NatsConnection;
  policy: Policy;
  /** How long vCenter may take for one task (create, clone, delete, reconfigure). */
  taskTimeoutMs: number;
}

/** The policy's placement in a vCenter, in the proxy's terms: a cluster stands for its root resource pool. */
export function placementOf(policy: Policy, vcenter?: string): Placement {
  const p = policy.placementFor(vcenter);
  const resourcePool = p.resourcePool ?? (p.cluster ? `/${p.datacenter}/host/${p.cluster}/Resources` : undefined);
  return {
    datacenter: p.datacenter,
    ...(p.folder ? { folder: p.folder } : {}),
    ...(resourcePool ? { resourcePool } : {}),
    ...(p.datastore ? { datastore: p.datastore } : {}),
  };
}

const mbOf = (s: NamedSize) => Math.round(s.memoryGB * 1024);
const sizeFacts = (s: NamedSize): NonNullable<ResultFacts["size"]> => ({ name: s.name, cpu: s.cpu, memoryMB: mbOf(s), diskGB: s.diskGB });
/** Whose the new VM is, for the result's message. */
const yours = (team: string | undefined) => (team ? `It is yours and ${teamLabel(team)}'s: its members, you and IT admins can manage it.` : "It is yours: only you and IT admins can delete it.");
/** The owner and team facts of a VM a command made or changed. */
const whose = (vm: VmSummary) => ({ ...(vm.owner ? { owner: vm.owner } : {}), ...(vm.team ? { team: vm.team } : {}) });

/**
 * Runs one vm command through vcenter-proxy. Every step is safe to repeat, because delivery is at
 * least once: create, clone and deploy are idempotent by request id in the proxy (a second
 * delivery gets the VM the first one made), a delete of a VM that is already gone is done when it
 * is a redelivery, and resize carries absolute targets, so applying it twice changes nothing.
 */
export async function runVmCommand(d: LifecycleDeps, cmd: VmCommand, ctx: CommandContext): Promise<CommandOutcome> {
  const call = { timeoutMs: d.taskTimeoutMs + 5_000, requestId: cmd.id, traceparent: ctx.traceparent };
  const team = "team" in cmd && typeof cmd.team === "string" ? cmd.team : undefined;
  const provenance = { owner: cmd.actor.userId, ...(team ? { team } : {}), requestId: cmd.id };
  const placement = placementOf(d.policy, cmd.vcenter);
  // Every request of the command goes to its vCenter (none named: the default one).
  const vc = inVcenter(cmd.vcenter);
  switch (cmd.action) {
    case "create": {
      const size = d.policy.resolveSize(cmd.size);
      await ctx.progress(`Creating ${quote(cmd.name)} (${size.name}: ${describeSize(size)})…`, { code: "working", vm: cmd.name, ...vc, size: sizeFacts(size) });
      const made = await requestJson(d.nc, ProxyEndpoints.vmCreate, { ...vc, name: cmd.name, cpu: size.cpu, memoryMB: mbOf(size), diskGB: size.diskGB, placement, provenance, timeoutMs: d.taskTimeoutMs }, call);
      logMade(ctx, made.created);
      const { vm, leaseExpires } = await giveLease(d, cmd, made.vm, call);
      return { message: `Created ${quote(vm.name)} (${size.name}: ${describeSize(size)}), ${PowerStateWords[vm.powerState]}. ${yours(team)}${leaseWords(leaseExpires, cmd.issuedAt)}`, facts: { code: "done", vm: vm.name, ...vc, size: sizeFacts(size), ...whose(vm), ...(leaseExpires ? { leaseExpires } : {}) }, vm };
    }
    case "clone": {
      await ctx.progress(`Cloning ${quote(cmd.source)} to ${quote(cmd.name)}…`, { code: "working", vm: cmd.name, ...vc, source: cmd.source });
      const made = await requestJson(d.nc, ProxyEndpoints.vmClone, { ...vc, source: cmd.source, name: cmd.name, sourceKind: "vm", placement, provenance, timeoutMs: d.taskTimeoutMs }, call);
      logMade(ctx, made.created);
      const { vm, leaseExpires } = await giveLease(d, cmd, made.vm, call);
      return { message: `Cloned ${quote(cmd.source)} to ${quote(vm.name)} (${describeVm(vm)}). ${yours(team)}${leaseWords(leaseExpires, cmd.issuedAt)}`, facts: { code: "done", vm: vm.name, ...vc, source: cmd.source, ...whose(vm), ...(leaseExpires ? { leaseExpires } : {}) }, vm };
    }
    case "deploy": {
      const size = d.policy.resolveSize(cmd.size);
      await ctx.progress(`Deploying ${quote(cmd.template)} as ${quote(cmd.name)} (${size.name}: ${size.cpu} vCPU, ${formatMemory(mbOf(size))} memory)…`, { code: "working", vm: cmd.name, ...vc, source: cmd.template, size: sizeFacts(size) });
      const made = await requestJson(d.nc, ProxyEndpoints.vmClone, { ...vc, source: cmd.template, name: cmd.name, sourceKind: "template", cpu: size.cpu, memoryMB: mbOf(size), placement, provenance, timeoutMs: d.taskTimeoutMs }, call);
      logMade(ctx, made.created);
      const { vm, leaseExpires } = await giveLease(d, cmd, made.vm, call);
      return { message: `Deployed ${quote(cmd.template)} as ${quote(vm.name)} (${describeVm(vm)}). ${yours(team)}${leaseWords(leaseExpires, cmd.issuedAt)}`, facts: { code: "done", vm: vm.name, ...vc, source: cmd.template, size: sizeFacts(size), ...whose(vm), ...(leaseExpires ? { leaseExpires } : {}) }, vm };
    }
    case "delete": {
      await ctx.progress(`Deleting ${quote(cmd.vm)} (powering it off first if it is running)…`, { code: "working", vm: cmd.vm, ...vc });
      const { name, destroyed } = await requestJson(d.nc, ProxyEndpoints.vmDestroy, { ...vc, vm: cmd.vm, powerOffFirst: true, timeoutMs: d.taskTimeoutMs }, call);
      if (!destroyed && !ctx.resumed) throw new IaasError("IAAS_VM_NOT_FOUND", `No VM named ${quote(cmd.vm)}. Names are exact and case-sensitive; see \`/iaas list\`.`);
      return { message: `Deleted ${quote(name)}.`, facts: { code: destroyed ? "done" : "already-done", vm: name, ...vc } };
    }
    case "resize": {
      const { vm, changed } = await requestJson(
        d.nc,
        ProxyEndpoints.vmReconfigure,
        { vm: cmd.vm, ...vc, ...(cmd.cpu !== undefined ? { cpu: cmd.cpu } : {}), ...(cmd.memoryGB !== undefined ? { memoryMB: Math.round(cmd.memoryGB * 1024) } : {}), timeoutMs: d.taskTimeoutMs },
        call,
      );
      const summary: VmSummary = { name: vm.name, ...(vm.path ? { path: vm.path } : {}), moref: vm.moref, powerState: vm.powerState, numCpu: vm.numCpu, memoryMB: vm.memoryMB, template: vm.template, ...whose(vm) };
      return changed
        ? { message: `Resized ${quote(vm.name)}: now ${describeVm(summary)}.`, facts: { code: "done", vm: vm.name, ...vc }, vm: summary }
        : { message: `${quote(vm.name)} already has ${vm.numCpu} vCPU and ${formatMemory(vm.memoryMB)} memory; nothing changed.`, facts: { code: "unchanged", vm: vm.name, ...vc }, vm: summary };
    }
    case "owner": {
      const { vm, changed } = await requestJson(
        d.nc,
        ProxyEndpoints.vmSetOwner,
        { vm: cmd.vm, ...vc, ...(cmd.owner !== undefined ? { owner: cmd.owner } : {}), ...(cmd.team !== undefined ? { team: cmd.team } : {}) },
        call,
      );
      const now = [vm.owner ? `<@${vm.owner}>` : "nobody", ...(vm.team ? [teamLabel(vm.team)] : [])].join(" and ");
      return changed
        ? { message: `${quote(vm.name)} now belongs to ${now}.`, facts: { code: "done", vm: vm.name, ...vc, ...whose(vm) }, vm }
        : { message: `${quote(vm.name)} already belongs to ${now}; nothing changed.`, facts: { code: "unchanged", vm: vm.name, ...vc, ...whose(vm) }, vm };
    }
  }
}

/**
 * Gives a VM just made its lease: `leaseMs` (else the policy's default) from the command's
 * `issuedAt`, so a redelivery writes the same time. None when the policy turns leases off.
 * Returns the VM as it is then, and the lease end for the result's facts.
 */
async function giveLease(d: LifecycleDeps, cmd: Extract<VmCommand, { action: "create" | "clone" | "deploy" }>, vm: VmSummary, call: { timeoutMs: number; requestId: string; traceparent: string }): Promise<{ vm: VmSummary; leaseExpires?: string }> {
  if (!d.policy.leases.enabled) return { vm };
  const expires = new Date(Date.parse(cmd.issuedAt) + (cmd.leaseMs ?? d.policy.leases.default)).toISOString();
  const out = await requestJson(d.nc, ProxyEndpoints.vmSetLease, { vm: vm.path ?? vm.name, ...inVcenter(cmd.vcenter), expires }, call);
  return { vm: out.vm, leaseExpires: expires };
}

/** The lease's end in words for a result: ` Its lease ends 2027-01-06 12:00 UTC (in 30 days).` */
function leaseWords(expires: string | undefined, issuedAt: string): string {
  if (!expires) return "";
  return ` Its lease ends ${expires.slice(0, 16).replace("T", " ")} UTC (in ${formatDuration(Date.parse(expires) - Date.parse(issuedAt))}); \`/iaas extend\` makes it longer.`;
}

function logMade(ctx: CommandContext, created: boolean): void {
  if (!created) ctx.log.info("the VM was already made by an earlier delivery of this command; not making another");
}
