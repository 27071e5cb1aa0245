import { IaasError, ProxyEndpoints, quote, type SnapshotCommand } from "@iaas/contracts";
import type { Policy } from "@iaas/policy";
import { inVcenter, readVmForGuard, requestJson, requireApproval, type CommandContext, type CommandOutcome, type Granted, type KV, type NatsConnection } from "@iaas/runtime";

export interface SnapshotDeps {
  nc: NatsConnection;
  policy: Policy;
  /** Timeout of the guard's look-up (vm-get). */
  lookupTimeoutMs: number;
  /** How long vCenter may take for one snapshot task. */
  taskTimeoutMs: number;
  /** The `iaas_approvals` bucket (read only), for a revert the policy's approval rules match; undefined before start. */
  approvals: () => KV | undefined;
}

/**
 * The policy on a snapshot command, where it runs (the gateway checked the same before it
 * published; a command straight from NATS gets the same answer): the role, its scope on the VM
 * (owner and team as vCenter records them; unowned VMs are admin-only), and for revert and delete
 * the protection of the VM by name, then by inventory path. `maxPerVm` is checked by the proxy
 * in the same read that makes the snapshot (snapshot-create's `limit`).
 */
export async function authorizeSnapshotCommand(d: SnapshotDeps, cmd: SnapshotCommand): Promise<Granted | undefined> {
  const { policy } = d;
  const id = `snapshot.${cmd.action}` as const;
  const via = cmd.actor.via;
  policy.authorize(cmd.actor, id);
  const protectedToo = cmd.action !== "create";
  if (protectedToo) policy.checkProtected(id, { name: cmd.vm }, { via });
  const vm = await readVmForGuard(d.nc, cmd.vm, { timeoutMs: d.lookupTimeoutMs, requestId: cmd.id }, cmd.vcenter);
  policy.authorizeOn(cmd.actor, id, vm);
  if (protectedToo) policy.checkProtected(id, { name: vm.name, path: vm.path }, { via, resolved: true });
  if (cmd.action !== "revert") return undefined;
  const kv = d.approvals();
  if (!kv) throw new Error("vm-lifecycle not started");
  return requireApproval({ kv, command: cmd, match: policy.approvalFor({ command: "snapshot.revert", vm: vm.name }) });
}

/** `iaas-` and the UTC time to the second, the name of a snapshot made without one: `iaas-2026-12-07T15-04-05Z`. */
export function defaultSnapshotName(issuedAt: string): string {
  return `iaas-${new Date(issuedAt).toISOString().slice(0, 19).replace(/:/g, "-")}Z`;
}

/**
 * Runs one snapshot command through vcenter-proxy; every step is safe to repeat. The default name
 * comes from the command's `issuedAt`, so a redelivery names it the same; create is idempotent by
 * request id in the proxy (a redelivery gets the snapshot the first delivery made), a revert twice
 * is one revert, and a delete of a snapshot already gone is done when it is a redelivery.
 */
export async function runSnapshotCommand(d: SnapshotDeps, cmd: SnapshotCommand, ctx: CommandContext): Promise<CommandOutcome> {
  const call = { timeoutMs: d.taskTimeoutMs + 5_000, requestId: cmd.id, traceparent: ctx.traceparent };
  const vc = inVcenter(cmd.vcenter);
  switch (cmd.action) {
    case "create": {
      const name = cmd.name ?? defaultSnapshotName(cmd.issuedAt);
      await ctx.progress(`Taking the snapshot ${quote(name)} of ${quote(cmd.vm)}…`, { code: "working", vm: cmd.vm, ...vc, snapshot: name });
      const { vm, snapshot, created } = await requestJson(
        d.nc,
        ProxyEndpoints.snapshotCreate,
        { vm: cmd.vm, ...vc, name, madeBy: { owner: cmd.actor.userId, requestId: cmd.id }, limit: d.policy.snapshots.maxPerVm, timeoutMs: d.taskTimeoutMs },
        call,
      );
      if (!created) ctx.log.info("the snapshot was already made by an earlier delivery of this command; not making another");
      const of = `${vm.snapshots ?? "?"} of ${d.policy.snapshots.maxPerVm} allowed`;
      return { message: `Took the snapshot ${quote(snapshot.name)} of ${quote(vm.name)} (${snapshot.quiesced ? "quiesced" : "disks only"}; ${of}).`, facts: { code: "done", vm: vm.name, ...vc, snapshot: snapshot.name }, vm };
    }
    case "revert": {
      const what = cmd.name ? `the snapshot ${quote(cmd.name)}` : "its current snapshot";
      await ctx.progress(`Reverting ${quote(cmd.vm)} to ${what}…`, { code: "working", vm: cmd.vm, ...vc, ...(cmd.name ? { snapshot: cmd.name } : {}) });
      const { vm, snapshot } = await requestJson(d.nc, ProxyEndpoints.snapshotRevert, { vm: cmd.vm, ...vc, ...(cmd.name ? { name: cmd.name } : {}), timeoutMs: d.taskTimeoutMs }, call);
      return { message: `Reverted ${quote(vm.name)} to the snapshot ${quote(snapshot.name)}; it is the current snapshot now.`, facts: { code: "done", vm: vm.name, ...vc, snapshot: snapshot.name }, vm };
    }
    case "delete": {
      await ctx.progress(`Deleting the snapshot ${quote(cmd.name)} of ${quote(cmd.vm)}…`, { code: "working", vm: cmd.vm, ...vc, snapshot: cmd.name });
      const { vm, removed } = await requestJson(d.nc, ProxyEndpoints.snapshotRemove, { vm: cmd.vm, ...vc, name: cmd.name, timeoutMs: d.taskTimeoutMs }, call);
      if (!removed && !ctx.resumed) throw new IaasError("IAAS_SNAPSHOT_NOT_FOUND", `${quote(vm)} has no snapshot named ${quote(cmd.name)}; \`/iaas snapshot list ${vm}\` shows its snapshots (names are exact).`);
      return { message: `Deleted the snapshot ${quote(cmd.name)} of ${quote(vm)}${removed ? "" : " (an earlier attempt had)"}; its child snapshots, if any, are kept.`, facts: { code: removed ? "done" : "already-done", vm, ...vc, snapshot: cmd.name } };
    }
  }
}
