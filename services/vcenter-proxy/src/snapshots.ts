import { IaasError, SNAPSHOTS_MADE_MAX, snapshotDescription, snapshotMadeBy, type MadeSnapshot, type ProxyRequest, type ProxyResponse, type SnapshotInfo } from "@iaas/contracts";
import { VirtualMachine, VirtualMachineSnapshot, VmProps, isVimFault, parseSnapshotTree, refKey, type MoRef, type SnapshotNode, type SnapshotTree } from "@iaas/vsphere";
import { toIaasError } from "./faults.js";
import type { Vcenter } from "./vcenter.js";

/** The snapshot tree's nodes as the contract shows them (parents named, the current one marked, iaas's mark read). */
export function snapshotInfos(tree: SnapshotTree): SnapshotInfo[] {
  const names = new Map(tree.snapshots.map((s) => [refKey(s.ref), s.name]));
  return tree.snapshots.map((s) => infoOf(s, tree, names));
}

function infoOf(s: SnapshotNode, tree: SnapshotTree, names: Map<string, string>): SnapshotInfo {
  const madeBy = snapshotMadeBy(s.description);
  const parent = s.parent ? names.get(refKey(s.parent)) : undefined;
  const created = Date.parse(s.createTime);
  return {
    name: s.name,
    moref: s.ref.value,
    createdAt: Number.isNaN(created) ? new Date(0).toISOString() : new Date(created).toISOString(),
    ...(s.description ? { description: s.description.slice(0, 2000) } : {}),
    ...(parent !== undefined ? { parent } : {}),
    current: tree.current !== undefined && refKey(tree.current) === refKey(s.ref),
    quiesced: s.quiesced,
    ...(madeBy ? { madeBy } : {}),
  };
}

/** The VM (not a template: templates have no snapshots) and its tree, with what a create needs to know. */
async function readVm(vc: Vcenter, vm: string): Promise<{ ref: MoRef; name: string; tree: SnapshotTree; toolsRunning: boolean }> {
  const found = await vc.findVm(vm, "vm");
  const vmo = new VirtualMachine(vc.client, found.ref);
  const props = await vmo.properties([VmProps.name, VmProps.powerState, VmProps.toolsRunningStatus, VmProps.snapshot]);
  return {
    ref: found.ref,
    name: String(props[VmProps.name] ?? found.name),
    tree: parseSnapshotTree(props[VmProps.snapshot]),
    toolsRunning: props[VmProps.powerState] === "poweredOn" && props[VmProps.toolsRunningStatus] === "guestToolsRunning",
  };
}

const byName = (tree: SnapshotTree, name: string) => tree.snapshots.filter((s) => s.name === name);

function twoOfThem(vm: string, name: string, n: number): IaasError {
  return new IaasError("IAAS_INVALID_ARGUMENT", `\`${vm}\` has ${n} snapshots named \`${name}\` (made outside iaas); manage them in the vSphere Client.`);
}

export async function listSnapshots(vc: Vcenter, req: ProxyRequest<"snapshotList">): Promise<ProxyResponse<"snapshotList">> {
  try {
    const v = await readVm(vc, req.vm);
    return { vm: await vc.summary(v.ref), snapshots: snapshotInfos(v.tree) };
  } catch (err) {
    throw toIaasError(err, { vm: req.vm, action: "list the snapshots" });
  }
}

/**
 * A snapshot without memory (the VM's disks only), quiesced when VMware Tools run in the guest
 * (vCenter refuses to quiesce without them). vCenter accepts a name twice; iaas does not, so a
 * redelivered command finds its own snapshot instead of making another.
 */
export async function createSnapshot(vc: Vcenter, req: ProxyRequest<"snapshotCreate">, defaultTimeoutMs: number): Promise<ProxyResponse<"snapshotCreate">> {
  const ctx = { vm: req.vm, action: "take the snapshot" };
  try {
    const v = await readVm(vc, req.vm);
    const same = byName(v.tree, req.name);
    const mine = same.find((s) => snapshotMadeBy(s.description)?.requestId === req.madeBy.requestId);
    if (mine) {
      return { vm: await vc.summary(v.ref), snapshot: snapshotInfos(v.tree).find((s) => s.moref === mine.ref.value)!, created: false };
    }
    if (same.length) throw new IaasError("IAAS_SNAPSHOT_EXISTS", `\`${v.name}\` already has a snapshot named \`${req.name}\`. Choose another name, or leave the name out.`);
    if (req.limit !== undefined && v.tree.snapshots.length >= req.limit) {
      throw new IaasError("IAAS_SNAPSHOT_LIMIT", `\`${v.name}\` has ${v.tree.snapshots.length} snapshots, and the policy allows ${req.limit} per VM. Delete one first (\`/iaas snapshot list ${v.name}\` shows them).`);
    }
    const task = await new VirtualMachine(vc.client, v.ref).createSnapshot(req.name, { description: snapshotDescription(req.madeBy), memory: false, quiesce: v.toolsRunning });
    const ref = (await task.wait({ timeoutMs: req.timeoutMs ?? defaultTimeoutMs })) as MoRef;
    vc.log.info({ vm: v.name, snapshot: req.name, moref: ref.value, requestId: req.madeBy.requestId, quiesced: v.toolsRunning }, "took a snapshot");
    const after = await new VirtualMachine(vc.client, v.ref).snapshotTree();
    const snapshot = snapshotInfos(after).find((s) => s.moref === ref.value);
    if (!snapshot) throw new IaasError("IAAS_VCENTER_FAULT", `vCenter made the snapshot \`${req.name}\` of \`${v.name}\` but does not list it.`);
    return { vm: await vc.summary(v.ref), snapshot, created: true };
  } catch (err) {
    throw toIaasError(err, ctx);
  }
}

/** Back to the named snapshot, or to the current one; either way it is the current one afterwards. */
export async function revertSnapshot(vc: Vcenter, req: ProxyRequest<"snapshotRevert">, defaultTimeoutMs: number): Promise<ProxyResponse<"snapshotRevert">> {
  const ctx = { vm: req.vm, action: "revert to the snapshot" };
  try {
    const v = await readVm(vc, req.vm);
    const timeoutMs = req.timeoutMs ?? defaultTimeoutMs;
    let target: SnapshotNode | undefined;
    if (req.name !== undefined) {
      const same = byName(v.tree, req.name);
      if (same.length > 1) throw twoOfThem(v.name, req.name, same.length);
      target = same[0];
      if (!target) throw new IaasError("IAAS_SNAPSHOT_NOT_FOUND", `\`${v.name}\` has no snapshot named \`${req.name}\`; \`/iaas snapshot list ${v.name}\` shows its snapshots.`);
      await (await new VirtualMachineSnapshot(vc.client, target.ref).revert()).wait({ timeoutMs });
    } else {
      target = v.tree.snapshots.find((s) => v.tree.current !== undefined && refKey(s.ref) === refKey(v.tree.current));
      if (!target) throw new IaasError("IAAS_SNAPSHOT_NOT_FOUND", `\`${v.name}\` has no current snapshot to revert to; \`/iaas snapshot list ${v.name}\` shows its snapshots.`);
      await (await new VirtualMachine(vc.client, v.ref).revertToCurrentSnapshot()).wait({ timeoutMs });
    }
    vc.log.info({ vm: v.name, snapshot: target.name, moref: target.ref.value }, "reverted to a snapshot");
    const after = await new VirtualMachine(vc.client, v.ref).snapshotTree();
    const snapshot = snapshotInfos(after).find((s) => s.moref === target.ref.value);
    if (!snapshot) throw new IaasError("IAAS_SNAPSHOT_NOT_FOUND", `The snapshot \`${target.name}\` of \`${v.name}\` was deleted meanwhile.`);
    return { vm: await vc.summary(v.ref), snapshot };
  } catch (err) {
    throw toIaasError(err, ctx);
  }
}

/** Removes one snapshot; its children stay (they move up to its parent). */
export async function removeSnapshot(vc: Vcenter, req: ProxyRequest<"snapshotRemove">, defaultTimeoutMs: number): Promise<ProxyResponse<"snapshotRemove">> {
  const ctx = { vm: req.vm, action: "delete the snapshot" };
  try {
    const v = await readVm(vc, req.vm);
    const same = byName(v.tree, req.name).filter((s) => req.moref === undefined || s.ref.value === req.moref);
    if (same.length > 1) throw twoOfThem(v.name, req.name, same.length);
    const target = same[0];
    if (!target) return { vm: v.name, removed: false };
    const info = snapshotInfos(v.tree).find((s) => s.moref === target.ref.value)!;
    try {
      await (await new VirtualMachineSnapshot(vc.client, target.ref).remove(false)).wait({ timeoutMs: req.timeoutMs ?? defaultTimeoutMs });
    } catch (err) {
      // Removed by someone else between the read and the call: nothing left to do.
      if (isVimFault(err, "ManagedObjectNotFound")) return { vm: v.name, removed: false };
      throw err;
    }
    vc.log.info({ vm: v.name, snapshot: target.name, moref: target.ref.value }, "deleted a snapshot");
    return { vm: v.name, removed: true, snapshot: info };
  } catch (err) {
    throw toIaasError(err, ctx);
  }
}

/** Every snapshot iaas made, on every VM, taken before `before`: one read of all VMs' trees. */
export async function snapshotsMade(vc: Vcenter, req: ProxyRequest<"snapshotsMade">): Promise<ProxyResponse<"snapshotsMade">> {
  try {
    const before = req.before === undefined ? Number.POSITIVE_INFINITY : Date.parse(req.before);
    const rs = await vc.client.retrieveContainer("VirtualMachine", [VmProps.name, VmProps.snapshot]);
    const hits: Omit<MadeSnapshot, "vmPath">[] = [];
    for (const r of rs) {
      if (r.props[VmProps.snapshot] === undefined) continue;
      for (const s of snapshotInfos(parseSnapshotTree(r.props[VmProps.snapshot]))) {
        if (s.madeBy && Date.parse(s.createdAt) < before) hits.push({ ...s, madeBy: s.madeBy, vm: String(r.props[VmProps.name] ?? r.obj.value), vmMoref: r.obj.value });
      }
    }
    hits.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.moref.localeCompare(b.moref));
    const kept = hits.slice(0, req.limit ?? SNAPSHOTS_MADE_MAX);
    const paths = await Promise.all(kept.map((h) => vc.pathOf({ type: "VirtualMachine", value: h.vmMoref })));
    return { snapshots: kept.map((h, i) => ({ ...h, ...(paths[i] ? { vmPath: paths[i] } : {}) })) };
  } catch (err) {
    throw toIaasError(err, { action: "read the snapshots iaas made" });
  }
}
