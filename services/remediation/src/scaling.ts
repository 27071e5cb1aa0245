import { createHash } from "node:crypto";
import { IaasError, PowerStateWords, formatMemory, quote, type VmInfo } from "@iaas/contracts";
import { alarmText, errText, isRetryable, type AlarmTrigger, type RuleContext } from "./context.js";
import { recordBrakeSkip, type Decision } from "./report.js";
import type { Cooldown, Pending, Resource } from "./state.js";

/** 1 vCPU, or 2 GB, per red alarm: the product's vertical-scaling rule. */
const STEP: Record<Resource, number> = { cpu: 1, memory: 2048 };

const WORD: Record<Resource, { unit: (n: number) => string; add: string; hotAdd: string; cap: string }> = {
  cpu: { unit: (n) => `${n} vCPU`, add: "1 vCPU", hotAdd: "CPU hot-add", cap: "remediation.maxCpu" },
  memory: { unit: formatMemory, add: "2 GB memory", hotAdd: "memory hot-add", cap: "remediation.maxMemoryGB" },
};

function currentOf(vm: VmInfo, r: Resource): number {
  return r === "cpu" ? vm.numCpu : vm.memoryMB;
}

function hotAddOf(vm: VmInfo, r: Resource): boolean {
  return r === "cpu" ? vm.cpuHotAddEnabled : vm.memoryHotAddEnabled;
}

function capOf(ctx: RuleContext, r: Resource): number {
  const s = ctx.policy.remediation;
  return r === "cpu" ? s.maxCpu : Math.floor(s.maxMemoryGB * 1024);
}

function changeOf(r: Resource, from: number, to: number): Decision["change"] {
  return r === "cpu" ? { cpu: { from, to } } : { memoryMB: { from, to } };
}

function targetSpec(r: Resource, to: number): { cpu?: number; memoryMB?: number } {
  return r === "cpu" ? { cpu: to } : { memoryMB: to };
}

/**
 * Vertical scaling: a CPU (memory) alarm turned red on a VM → 1 vCPU (2 GB) more, up to the cap.
 * Read the VM first; a powered-on VM without hot-add for that resource is deferred to its next
 * power-off, skipped, or restarted, as the policy says. Cooldown per VM; at the cap, one notice
 * per episode. A redelivered event resumes its own change (its cooldown names it) rather than
 * making a second one.
 */
export async function scaleUp(ctx: RuleContext, t: AlarmTrigger, resource: Resource): Promise<void> {
  const settings = ctx.policy.remediation;
  const dryRun = settings.dryRun;
  const rule = resource;
  const base = { rule, cause: { id: t.eventId, alarm: t.alarm }, about: t.entity.value ?? t.entity.name, dryRun, vm: t.entity.name } as const;
  const record = (d: Omit<Decision, keyof typeof base> & Partial<Pick<Decision, "vm" | "about">>) => ctx.report.record({ ...base, ...d } as Decision);

  if (t.entity.type !== "VirtualMachine") {
    await record({ decision: "skipped", reason: "wrong-entity", text: `Not resizing anything for ${alarmText(t)}: it fired on ${t.entity.type} ${quote(t.entity.name)}, not on a VM.` });
    return;
  }

  if (!dryRun && t.entity.value && ctx.state.brakeSpent(ctx.now()) && (await refusedUnread(ctx, t, resource, t.entity.value))) return;

  let vm: VmInfo;
  try {
    vm = await ctx.vc.vmInfo(t.entity.name);
  } catch (err) {
    if (isRetryable(err)) throw err;
    const code_ = err instanceof IaasError ? err.code : undefined;
    if (code_ === "IAAS_VM_NOT_FOUND" || code_ === "IAAS_VM_AMBIGUOUS") {
      await record({ decision: "skipped", reason: code_ === "IAAS_VM_NOT_FOUND" ? "vm-not-found" : "vm-ambiguous", text: `Not resizing ${quote(t.entity.name)} for ${alarmText(t)}: ${errText(err)}` });
      return;
    }
    await record({ decision: "failed", reason: "vcenter-error", text: `Could not read ${quote(t.entity.name)} for ${alarmText(t)}: ${errText(err)}` });
    return;
  }
  const about = vm.moref;
  const name = quote(vm.name);
  if (t.entity.value && t.entity.value !== vm.moref) {
    await record({ about, decision: "skipped", reason: "vm-changed", text: `Not resizing ${name} for ${alarmText(t)}: the alarm was on ${t.entity.value}, and the VM by that name now is ${vm.moref}.` });
    return;
  }
  if (vm.template) {
    await record({ about, decision: "skipped", reason: "template", text: `Not resizing ${name} for ${alarmText(t)}: it is a template.` });
    return;
  }

  const now = ctx.now();
  if (await handedOver(ctx, t, vm, "resizing")) return;
  const cooldown = await ctx.state.cooldown("scale", vm.moref);
  if (cooldown && cooldown.eventId === t.eventId) {
    // This event's change was started by an earlier delivery that did not finish.
    await resume(ctx, t, vm, resource, cooldown);
    return;
  }
  if (cooldown && cooldown.until > now) {
    await record({
      about,
      decision: "skipped",
      reason: "cooldown",
      text: `Not resizing ${name} for ${alarmText(t)}: it was changed less than ${settings.cooldownMinutes} min ago (cooldown until ${new Date(cooldown.until).toISOString().slice(11, 16)} UTC).`,
    });
    return;
  }

  const current = currentOf(vm, resource);
  const cap = capOf(ctx, resource);
  if (current >= cap) {
    const first = await ctx.state.startCapEpisode(resource, vm.moref, t.eventId, current, now);
    await record({
      about,
      decision: "skipped",
      reason: "at-cap",
      // Once per episode: later alarms while the VM stays at the cap are audited, not posted.
      notify: first,
      text: `${name} is at the remediation cap of ${WORD[resource].unit(cap)} (${WORD[resource].unit(current)} now): ${alarmText(t)} is red, but nothing was added. Look at the workload, or raise ${WORD[resource].cap}.`,
    });
    return;
  }
  await ctx.state.endCapEpisode(resource, vm.moref);
  const target = Math.min(current + STEP[resource], cap);
  const change = changeOf(resource, current, target);
  const what = `${WORD[resource].unit(current)} → ${WORD[resource].unit(target)}`;

  if (vm.powerState !== "poweredOff" && !hotAddOf(vm, resource)) {
    const mode = settings.withoutHotAdd;
    if (mode === "skip") {
      await record({ about, decision: "skipped", reason: "no-hot-add", change, text: `Not resizing ${name} for ${alarmText(t)}: it is ${PowerStateWords[vm.powerState]} without ${WORD[resource].hotAdd}, and the policy says skip (withoutHotAdd: skip). Wanted: ${what}.` });
      return;
    }
    const refusal = restartRefusal(ctx, vm);
    if (mode === "defer" || refusal !== undefined) {
      await defer(ctx, t, vm, resource, current, target, mode === "restart" ? "restart-not-allowed" : "no-hot-add", refusal ?? "");
      return;
    }
  }
  const how = vm.powerState === "poweredOff" ? "powered-off" : hotAddOf(vm, resource) ? "hot-add" : "restarted";

  if (!dryRun && !(await ctx.state.takeBrake(now, settings.maxActionsPerMinute))) {
    await recordBrakeSkip(ctx, { ...base, about, decision: "skipped", reason: "brake", change, text: `Not resizing ${name} for ${alarmText(t)}: remediation already made ${settings.maxActionsPerMinute} changes in the last minute (remediation.maxActionsPerMinute). Wanted: ${what}.` }, settings.maxActionsPerMinute);
    return;
  }
  if (dryRun) {
    const verb = how === "restarted" ? `restart ${name} to add ${WORD[resource].add}` : `add ${WORD[resource].add} to ${name}`;
    await record({ about, decision: "acted", reason: how, change, text: `Would ${verb} (${what}) for ${alarmText(t)}; dry run, nothing changed.` });
    return;
  }
  await ctx.state.setCooldown("scale", vm.moref, { until: now + settings.cooldownMinutes * 60_000, eventId: t.eventId, from: current, reason: how, ...targetSpec(resource, target) });
  await makeChange(ctx, t, vm, resource, current, target, how);
  await ctx.state.brakeDone(now, ctx.now());
}

/**
 * The storm's short cut: the brake's budget is known to be used up (`brakeSpent`), so no change can
 * be made this minute and the VM (the alarm's moref) is not read. The flap guard still counts the
 * red and a cooldown still refuses first, as on the long path; what only the VM's read tells (not
 * found, changed, a template, at the cap, no hot-add) is not looked at: the alarm is refused as
 * `brake`. False when the long path decides: this event's own change to resume, or the brake has
 * budget again after all.
 */
async function refusedUnread(ctx: RuleContext, t: AlarmTrigger, resource: Resource, moref: string): Promise<boolean> {
  const settings = ctx.policy.remediation;
  const now = ctx.now();
  const vm = { moref, name: t.entity.name };
  const [flapping, cooldown] = await Promise.all([handedOver(ctx, t, vm, "resizing"), ctx.state.cooldown("scale", moref)]);
  if (flapping) return true;
  if (cooldown && cooldown.eventId === t.eventId) return false;
  const base = { rule: resource, cause: { id: t.eventId, alarm: t.alarm }, about: moref, dryRun: false, vm: t.entity.name } as const;
  const name = quote(t.entity.name);
  if (cooldown && cooldown.until > now) {
    await ctx.report.record({
      ...base,
      decision: "skipped",
      reason: "cooldown",
      text: `Not resizing ${name} for ${alarmText(t)}: it was changed less than ${settings.cooldownMinutes} min ago (cooldown until ${new Date(cooldown.until).toISOString().slice(11, 16)} UTC).`,
    });
    return true;
  }
  if (!ctx.state.brakeSpent(now)) return false;
  await recordBrakeSkip(ctx, { ...base, decision: "skipped", reason: "brake", text: `Not resizing ${name} for ${alarmText(t)}: remediation already made ${settings.maxActionsPerMinute} changes in the last minute (remediation.maxActionsPerMinute). Wanted: ${WORD[resource].add}.` }, settings.maxActionsPerMinute);
  return true;
}

/**
 * The flap guard: records this red alarm on the VM and, when the VM is flapping (one alarm red
 * remediation.flap.count times within flap.withinMinutes), records the decision not to act and
 * returns true. Only the red that starts the hand-over is posted; later ones are audited.
 */
export async function handedOver(ctx: RuleContext, t: AlarmTrigger, vm: Pick<VmInfo, "moref" | "name">, doing: string): Promise<boolean> {
  const f = ctx.policy.remediation.flap;
  const v = await ctx.state.noteRed(vm.moref, t.eventId, t.alarm, ctx.now(), f.count, f.withinMinutes * 60_000);
  if (!v.held) return false;
  const name = quote(vm.name);
  await ctx.report.record({
    rule: t.rule,
    decision: "skipped",
    reason: "flapping",
    cause: { id: t.eventId, alarm: t.alarm },
    about: vm.moref,
    vm: vm.name,
    dryRun: ctx.policy.remediation.dryRun,
    notify: v.first,
    text: v.first
      ? `${name} is flapping: handing over to you. ${alarmText(t)} turned red ${v.reds} times within ${f.withinMinutes} min, so remediation stops changing this VM until ${f.withinMinutes} min pass with no red alarm on it.`
      : `Not ${doing} ${name} for ${alarmText(t)}: it is flapping and was handed over to people at ${new Date(v.since).toISOString().slice(11, 16)} UTC.`,
  });
  return true;
}

/** The powered-on VM without hot-add cannot be restarted for the change: why, or undefined when it can. */
function restartRefusal(ctx: RuleContext, vm: VmInfo): string | undefined {
  if (ctx.policy.remediation.withoutHotAdd !== "restart") return "";
  if (!ctx.policy.mayRestart(vm.name)) return " It is not opted in to restarts (remediation.restartOptIn).";
  if (ctx.policy.isProtected(vm.name, vm.path)) return " It is protected by policy, so remediation never restarts it.";
  if (vm.powerState !== "poweredOn") return ` It is ${PowerStateWords[vm.powerState]}.`;
  if (vm.toolsStatus !== "guestToolsRunning") return " VMware Tools is not running in it, so it cannot be shut down cleanly.";
  return undefined;
}

/**
 * Makes the change, its cooldown already recorded: a reconfigure, or for `restarted` a guest
 * shutdown, the reconfigure and a power-on (a guest is never powered off hard).
 */
async function makeChange(ctx: RuleContext, t: AlarmTrigger, vm: VmInfo, resource: Resource, from: number, to: number, how: "hot-add" | "powered-off" | "restarted"): Promise<void> {
  const base = { rule: resource, cause: { id: t.eventId, alarm: t.alarm }, about: vm.moref, vm: vm.name, dryRun: false, change: changeOf(resource, from, to) } as const;
  const name = quote(vm.name);
  const what = `${WORD[resource].unit(from)} → ${WORD[resource].unit(to)}`;
  const fail = (err: unknown, doing: string) => ctx.report.record({ ...base, decision: "failed", reason: "vcenter-error", text: `Could not ${doing} ${name} (${what}) for ${alarmText(t)}: ${errText(err)}` });
  if (how === "restarted" && vm.powerState === "poweredOn") {
    try {
      await ctx.vc.power(vm.path ?? vm.name, "shutdown");
    } catch (err) {
      if (isRetryable(err)) throw err;
      await fail(err, "shut down, to resize,");
      return;
    }
  }
  let failure: unknown;
  try {
    await ctx.vc.reconfigure(vm.path ?? vm.name, targetSpec(resource, to));
  } catch (err) {
    if (isRetryable(err) && how !== "restarted") throw err;
    failure = err;
  }
  // The VM was running before the restart: whatever the resize did, it runs again.
  if (how === "restarted") await ctx.vc.power(vm.path ?? vm.name, "on");
  if (failure !== undefined) {
    await fail(failure, `add ${WORD[resource].add} to`);
    return;
  }
  const text =
    how === "restarted"
      ? `Restarted ${name} to add ${WORD[resource].add} (${what}) because ${alarmText(t)} turned red and it has no ${WORD[resource].hotAdd}.`
      : `Added ${WORD[resource].add} to ${name} (${what}) because ${alarmText(t)} turned red.`;
  await ctx.report.record({ ...base, decision: "acted", reason: how, text });
}

/** Finishes the change an interrupted delivery of the same event started (same target, same notice). */
async function resume(ctx: RuleContext, t: AlarmTrigger, vm: VmInfo, resource: Resource, c: Cooldown): Promise<void> {
  const to = resource === "cpu" ? c.cpu : c.memoryMB;
  const from = typeof c.from === "number" ? c.from : currentOf(vm, resource);
  const how = c.reason === "restarted" || c.reason === "powered-off" ? c.reason : "hot-add";
  if (to === undefined) return;
  if (currentOf(vm, resource) >= to && !(how === "restarted" && vm.powerState === "poweredOff")) {
    // Done before the interruption; only the record may be missing (published again under the same id).
    const text = how === "restarted" ? `Restarted ${quote(vm.name)} to add ${WORD[resource].add} (${WORD[resource].unit(from)} → ${WORD[resource].unit(to)}) because ${alarmText(t)} turned red.` : `Added ${WORD[resource].add} to ${quote(vm.name)} (${WORD[resource].unit(from)} → ${WORD[resource].unit(to)}) because ${alarmText(t)} turned red.`;
    await ctx.report.record({ rule: resource, cause: { id: t.eventId, alarm: t.alarm }, about: vm.moref, vm: vm.name, dryRun: false, change: changeOf(resource, from, to), decision: "acted", reason: how, text });
    return;
  }
  await makeChange(ctx, t, vm, resource, from, to, how);
}

/** The id of a deferral: one per VM, resource and causing event. */
function pendingId(eventId: string, moref: string, resource: Resource): string {
  return `pending:${createHash("sha256").update(`${eventId}\u0000${moref}\u0000${resource}`).digest("hex").slice(0, 32)}`;
}

async function defer(ctx: RuleContext, t: AlarmTrigger, vm: VmInfo, resource: Resource, from: number, to: number, reason: "no-hot-add" | "restart-not-allowed", extra: string): Promise<void> {
  const dryRun = ctx.policy.remediation.dryRun;
  const base = { rule: resource, cause: { id: t.eventId, alarm: t.alarm }, about: vm.moref, vm: vm.name, dryRun, change: changeOf(resource, from, to) } as const;
  const name = quote(vm.name);
  const what = `${WORD[resource].unit(from)} → ${WORD[resource].unit(to)}`;
  const existing = await ctx.state.pending(resource, vm.moref);
  if (existing && existing.eventId !== t.eventId) {
    await ctx.report.record({ ...base, decision: "skipped", reason: "already-pending", text: `${name} already has a change waiting for its next power-off (${WORD[resource].unit(existing.from)} → ${WORD[resource].unit(existing.to)}); ${alarmText(t)} adds nothing to it.` });
    return;
  }
  if (!dryRun && !existing) {
    await ctx.state.putPending({ id: pendingId(t.eventId, vm.moref, resource), resource, vm: vm.name, moref: vm.moref, from, to, eventId: t.eventId, alarm: t.alarm, at: ctx.now() });
  }
  await ctx.report.record({
    ...base,
    decision: "deferred",
    reason,
    text: dryRun
      ? `Would defer ${WORD[resource].add} for ${name} (${what}) to its next power-off: it is powered on without ${WORD[resource].hotAdd}.${extra} Dry run, nothing recorded.`
      : `${name} needs ${WORD[resource].add} more (${alarmText(t)} is red) but is powered on without ${WORD[resource].hotAdd}: the change (${what}) will be made when it is next powered off.${extra}`,
  });
}

/**
 * Applies a VM's deferred changes once it is powered off (its power-off event, or the periodic
 * re-check). Targets are absolute and capped by the policy as it is now; a VM already at or above
 * a target needs nothing. The VM still running: nothing happens, the change keeps waiting.
 * `vmName` is the name the power-off event gives (the deferral's own when the re-check calls).
 */
export async function applyPending(ctx: RuleContext, items: Pending[], vmName: string | undefined): Promise<void> {
  if (items.length === 0) return;
  const s = ctx.policy.remediation;
  const first = items[0]!;
  const name = vmName ?? first.vm;
  const base = (p: Pending) => ({ rule: p.resource, cause: { id: p.id, alarm: p.alarm }, about: p.moref, vm: name, dryRun: s.dryRun }) as const;

  let vm: VmInfo;
  try {
    vm = await ctx.vc.vmInfo(name);
  } catch (err) {
    if (isRetryable(err)) throw err;
    const gone = err instanceof IaasError && (err.code === "IAAS_VM_NOT_FOUND" || err.code === "IAAS_VM_AMBIGUOUS");
    if (!gone) throw err;
    for (const p of items) {
      await ctx.state.deletePending(p);
      await ctx.report.record({ ...base(p), decision: "skipped", reason: err.code === "IAAS_VM_NOT_FOUND" ? "vm-not-found" : "vm-ambiguous", text: `Dropped the change waiting for ${quote(name)}'s power-off: ${errText(err)}` });
    }
    return;
  }
  if (vm.moref !== first.moref) {
    for (const p of items) {
      await ctx.state.deletePending(p);
      await ctx.report.record({ ...base(p), decision: "skipped", reason: "vm-changed", text: `Dropped the change waiting for ${quote(name)}: the VM by that name is now ${vm.moref}, not ${p.moref}.` });
    }
    return;
  }
  if (vm.powerState !== "poweredOff") return;

  const todo: { p: Pending; from: number; to: number }[] = [];
  for (const p of items) {
    const from = currentOf(vm, p.resource);
    const to = Math.min(p.to, capOf(ctx, p.resource));
    if (from >= to) {
      await ctx.state.deletePending(p);
      await ctx.report.record({ ...base(p), decision: "skipped", reason: "already-applied", text: `The change waiting for ${quote(vm.name)} is no longer needed: it has ${WORD[p.resource].unit(from)} already.` });
      continue;
    }
    todo.push({ p, from, to });
  }
  if (todo.length === 0) return;
  const what = todo.map((x) => `${WORD[x.p.resource].unit(x.from)} → ${WORD[x.p.resource].unit(x.to)}`).join(", ");
  if (s.dryRun) {
    for (const x of todo) await ctx.report.record({ ...base(x.p), decision: "acted", reason: "deferred-applied", change: changeOf(x.p.resource, x.from, x.to), text: `Would apply the deferred change to ${quote(vm.name)} now that it is powered off (${what}); dry run, nothing changed.` });
    return;
  }
  const now = ctx.now();
  // Handed over to people (flapping): the change keeps waiting, and is made once the hand-over ends.
  if (await ctx.state.isHandedOver(vm.moref, now, s.flap.withinMinutes * 60_000)) return;
  if (!(await ctx.state.takeBrake(now, s.maxActionsPerMinute))) {
    // Kept: the periodic re-check tries again while the VM stays off. The notice id is the same each time.
    for (const x of todo) await recordBrakeSkip(ctx, { ...base(x.p), decision: "skipped", reason: "brake", change: changeOf(x.p.resource, x.from, x.to), text: `Not yet applying the deferred change to ${quote(vm.name)} (${what}): remediation already made ${s.maxActionsPerMinute} changes in the last minute. It stays queued.` }, s.maxActionsPerMinute);
    return;
  }
  const spec = Object.assign({}, ...todo.map((x) => targetSpec(x.p.resource, x.to))) as { cpu?: number; memoryMB?: number };
  try {
    await ctx.vc.reconfigure(vm.path ?? vm.name, spec);
  } catch (err) {
    if (isRetryable(err)) throw err;
    // Powered on again meanwhile: not a failure, the change keeps waiting for the next power-off.
    if (err instanceof IaasError && (err.code === "IAAS_HOT_ADD_DISABLED" || err.code === "IAAS_INVALID_POWER_STATE")) return;
    for (const x of todo) await ctx.report.record({ ...base(x.p), decision: "failed", reason: "vcenter-error", change: changeOf(x.p.resource, x.from, x.to), text: `Could not apply the deferred change to ${quote(vm.name)} (${what}): ${errText(err)}. It stays queued.` });
    return;
  }
  await ctx.state.setCooldown("scale", vm.moref, { until: now + s.cooldownMinutes * 60_000, eventId: first.id, ...spec });
  for (const x of todo) {
    await ctx.report.record({ ...base(x.p), decision: "acted", reason: "deferred-applied", change: changeOf(x.p.resource, x.from, x.to), text: `Applied the change deferred for ${quote(vm.name)} while it was powered off: ${WORD[x.p.resource].unit(x.from)} → ${WORD[x.p.resource].unit(x.to)} (alarm ${quote(x.p.alarm)}).` });
    await ctx.state.deletePending(x.p);
  }
  await ctx.state.brakeDone(now, ctx.now());
}
