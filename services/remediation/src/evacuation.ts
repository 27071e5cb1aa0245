import { IaasError, quote, type DatastoreInfo, type VmInfo } from "@iaas/contracts";
import { alarmText, errText, isRetryable, type AlarmTrigger, type RuleContext } from "./context.js";
import { recordBrakeSkip, type Decision } from "./report.js";
import { handedOver } from "./scaling.js";

/** Space as remediation plans it: live numbers from vCenter, updated by the moves it makes. */
interface Space {
  ds: DatastoreInfo;
  freeGB: number;
}

function usedPercent(s: Space, extraGB = 0): number {
  if (s.ds.capacityGB <= 0) return 100;
  return ((s.ds.capacityGB - (s.freeGB - extraGB)) / s.ds.capacityGB) * 100;
}

const pct = (n: number) => `${Math.round(n)} %`;

/** A VM's size for planning: every disk, at its provisioned capacity (the worst case a move needs). */
function vmSizeGB(vm: VmInfo): number {
  return vm.disks.reduce((sum, d) => sum + d.capacityGB, 0);
}

/**
 * The best datastore for a VM: one its host mounts, accessible, not excluded by policy, not one it
 * is on, that stays under the threshold with the VM on it; of those, the one with the most free
 * space (then by name, so the choice is stable). Undefined when none fits.
 */
function pickTarget(ctx: RuleContext, vm: VmInfo, spaces: Map<string, Space>, sizeGB: number): Space | undefined {
  const threshold = ctx.policy.remediation.datastoreThresholdPercent;
  return [...spaces.values()]
    .filter((s) => s.ds.accessible && !vm.datastores.includes(s.ds.name) && !ctx.policy.isDatastoreExcluded(s.ds.name))
    .filter((s) => vm.host === undefined || s.ds.hosts.includes(vm.host))
    .filter((s) => s.freeGB >= sizeGB && usedPercent(s, sizeGB) < threshold)
    .sort((a, b) => b.freeGB - a.freeGB || a.ds.name.localeCompare(b.ds.name))[0];
}

/** Why no datastore fits, for the notice. */
function noTargetWhy(ctx: RuleContext, vm: VmInfo): string {
  const t = ctx.policy.remediation.datastoreThresholdPercent;
  return `no datastore ${vm.host ? `that its host ${quote(vm.host)} mounts ` : ""}is accessible, not excluded by policy, and stays under ${t} % used with the VM on it`;
}

/**
 * Datastore evacuation: a datastore usage alarm turned red → move VMs off the datastore, largest
 * first, each to the datastore with the most free space that fits (see pickTarget), until the
 * datastore is planned to be under the threshold again. Sizes and free space are live from vCenter
 * and updated by each move as planned (the simulator does not move free space on relocate).
 */
export async function evacuateDatastore(ctx: RuleContext, t: AlarmTrigger): Promise<void> {
  const s = ctx.policy.remediation;
  const dsName = t.entity.name;
  const base = { rule: "datastore", cause: { id: t.eventId, alarm: t.alarm }, dryRun: s.dryRun, datastore: dsName } as const;
  const record = (d: Omit<Decision, keyof typeof base | "about"> & { about?: string }) => ctx.report.record({ ...base, about: dsName, ...d } as Decision);

  if (t.entity.type !== "Datastore") {
    await record({ decision: "skipped", reason: "wrong-entity", text: `Not evacuating anything for ${alarmText(t)}: it fired on ${t.entity.type} ${quote(t.entity.name)}, not on a datastore.` });
    return;
  }
  const spaces = new Map((await ctx.vc.datastores()).map((ds) => [ds.name, { ds, freeGB: ds.freeGB }]));
  const source = spaces.get(dsName);
  if (!source) {
    await record({ decision: "skipped", reason: "datastore-not-found", text: `Not evacuating ${quote(dsName)} for ${alarmText(t)}: vCenter has no datastore by that name.` });
    return;
  }
  if (usedPercent(source) < s.datastoreThresholdPercent) {
    await record({ decision: "skipped", reason: "below-threshold", text: `Not evacuating ${quote(dsName)} for ${alarmText(t)}: it is ${pct(usedPercent(source))} used, under the ${s.datastoreThresholdPercent} % threshold.` });
    return;
  }
  const onIt = await ctx.vc.datastoreVms(dsName);
  const vms: VmInfo[] = [];
  for (const v of onIt) {
    try {
      vms.push(await ctx.vc.vmInfo(v.path ?? v.name));
    } catch (err) {
      // Deleted since the list was read.
      if (err instanceof IaasError && err.code === "IAAS_VM_NOT_FOUND") continue;
      if (err instanceof IaasError && err.code === "IAAS_VM_AMBIGUOUS") {
        await record({ about: v.moref, vm: v.name, decision: "skipped", reason: "vm-ambiguous", text: `Not moving ${quote(v.name)} off ${quote(dsName)}: ${errText(err)}` });
        continue;
      }
      throw err;
    }
  }
  if (vms.length === 0) {
    await record({ decision: "skipped", reason: "no-vms", text: `Cannot evacuate ${quote(dsName)} for ${alarmText(t)}: no VM is on it (${pct(usedPercent(source))} used by other files).` });
    return;
  }
  vms.sort((a, b) => vmSizeGB(b) - vmSizeGB(a) || a.name.localeCompare(b.name));

  for (const vm of vms) {
    if (usedPercent(source) < s.datastoreThresholdPercent) break;
    const outcome = await moveVm(ctx, t, vm, source, spaces, `the datastore usage alarm on ${quote(dsName)}, ${pct(usedPercent(source))} used`);
    if (outcome === "brake") break;
  }
}

/** A VM-level storage alarm (`VM Storage Usage`) moves that VM, off the datastore it is on. */
export async function moveAlarmedVm(ctx: RuleContext, t: AlarmTrigger): Promise<void> {
  const s = ctx.policy.remediation;
  const base = { rule: "vmStorage", cause: { id: t.eventId, alarm: t.alarm }, dryRun: s.dryRun, vm: t.entity.name, about: t.entity.value ?? t.entity.name } as const;
  if (t.entity.type !== "VirtualMachine") {
    await ctx.report.record({ ...base, decision: "skipped", reason: "wrong-entity", text: `Not moving anything for ${alarmText(t)}: it fired on ${t.entity.type} ${quote(t.entity.name)}, not on a VM.` });
    return;
  }
  let vm: VmInfo;
  try {
    vm = await ctx.vc.vmInfo(t.entity.name);
  } catch (err) {
    if (isRetryable(err)) throw err;
    const c = err instanceof IaasError ? err.code : undefined;
    const reason = c === "IAAS_VM_NOT_FOUND" ? "vm-not-found" : c === "IAAS_VM_AMBIGUOUS" ? "vm-ambiguous" : undefined;
    if (reason) await ctx.report.record({ ...base, decision: "skipped", reason, text: `Not moving ${quote(t.entity.name)} for ${alarmText(t)}: ${errText(err)}` });
    else await ctx.report.record({ ...base, decision: "failed", reason: "vcenter-error", text: `Could not read ${quote(t.entity.name)} for ${alarmText(t)}: ${errText(err)}` });
    return;
  }
  if (t.entity.value && t.entity.value !== vm.moref) {
    await ctx.report.record({ ...base, about: vm.moref, decision: "skipped", reason: "vm-changed", text: `Not moving ${quote(vm.name)} for ${alarmText(t)}: the alarm was on ${t.entity.value}, and the VM by that name now is ${vm.moref}.` });
    return;
  }
  if (await handedOver(ctx, t, vm, "moving")) return;
  const spaces = new Map((await ctx.vc.datastores()).map((ds) => [ds.name, { ds, freeGB: ds.freeGB }]));
  const source = spaces.get(vm.datastores[0] ?? "");
  if (!source) {
    await ctx.report.record({ ...base, about: vm.moref, decision: "skipped", reason: "datastore-not-found", text: `Not moving ${quote(vm.name)} for ${alarmText(t)}: its datastore is not known to vCenter.` });
    return;
  }
  await moveVm(ctx, t, vm, source, spaces, alarmText(t));
}

/**
 * Moves one VM off `source` to the best target, or says why not. Each VM has a move cooldown, so
 * two full datastores never trade a VM back and forth; a redelivered event resumes its own move.
 */
async function moveVm(ctx: RuleContext, t: AlarmTrigger, vm: VmInfo, source: Space, spaces: Map<string, Space>, because: string): Promise<"moved" | "skipped" | "brake"> {
  const s = ctx.policy.remediation;
  const base = { rule: t.rule, cause: { id: t.eventId, alarm: t.alarm }, dryRun: s.dryRun, vm: vm.name, about: vm.moref } as const;
  const name = quote(vm.name);
  const sizeGB = vmSizeGB(vm);
  const now = ctx.now();
  const cooldown = await ctx.state.cooldown("move", vm.moref);
  const resumed = cooldown !== undefined && cooldown.eventId === t.eventId && cooldown.datastore !== undefined;
  if (!resumed && (await ctx.state.isHandedOver(vm.moref, now, s.flap.withinMinutes * 60_000))) {
    // Flapping, handed over to people: audited, not posted (the hand-over notice said it).
    await ctx.report.record({ ...base, datastore: source.ds.name, decision: "skipped", reason: "flapping", notify: false, text: `Not moving ${name} off ${quote(source.ds.name)} (${because}): it is flapping and handed over to people.` });
    return "skipped";
  }
  if (cooldown && !resumed && cooldown.until > now) {
    await ctx.report.record({ ...base, datastore: source.ds.name, decision: "skipped", reason: "cooldown", text: `Not moving ${name} off ${quote(source.ds.name)} (${because}): it was moved less than ${s.cooldownMinutes} min ago.` });
    return "skipped";
  }
  const target = resumed ? spaces.get(cooldown.datastore!) : pickTarget(ctx, vm, spaces, sizeGB);
  if (!target) {
    await ctx.report.record({ ...base, datastore: source.ds.name, decision: "skipped", reason: "no-target", text: `Cannot move ${name} off ${quote(source.ds.name)} (${because}): ${noTargetWhy(ctx, vm)}. Nothing was moved.` });
    return "skipped";
  }
  const change = { datastore: { from: source.ds.name, to: target.ds.name } };
  const plan = () => {
    source.freeGB += sizeGB;
    target.freeGB -= sizeGB;
  };
  const where = `from ${quote(source.ds.name)} to ${quote(target.ds.name)} (${target.freeGB} GB free, ${pct(usedPercent(target, sizeGB))} used after the move)`;
  if (!resumed && !s.dryRun && !(await ctx.state.takeBrake(now, s.maxActionsPerMinute))) {
    await recordBrakeSkip(ctx, { ...base, datastore: source.ds.name, change, decision: "skipped", reason: "brake", text: `Stopped moving VMs off ${quote(source.ds.name)} at ${name}: remediation already made ${s.maxActionsPerMinute} changes in the last minute (remediation.maxActionsPerMinute).` }, s.maxActionsPerMinute);
    return "brake";
  }
  if (s.dryRun) {
    await ctx.report.record({ ...base, datastore: source.ds.name, change, decision: "acted", reason: "relocated", text: `Would move ${name} ${where} because of ${because}; dry run, nothing moved.` });
    plan();
    return "moved";
  }
  if (!resumed) await ctx.state.setCooldown("move", vm.moref, { until: now + s.cooldownMinutes * 60_000, eventId: t.eventId, datastore: target.ds.name, from: source.ds.name, reason: "relocated" });
  try {
    await ctx.vc.relocate(vm.path ?? vm.name, target.ds.name);
  } catch (err) {
    if (isRetryable(err)) throw err;
    await ctx.report.record({ ...base, datastore: source.ds.name, change, decision: "failed", reason: "vcenter-error", text: `Could not move ${name} ${where}: ${errText(err)}` });
    return "skipped";
  }
  await ctx.report.record({ ...base, datastore: source.ds.name, change, decision: "acted", reason: "relocated", text: `Moved ${name} ${where} because of ${because}.` });
  if (!resumed) await ctx.state.brakeDone(now, ctx.now());
  plan();
  return "moved";
}
