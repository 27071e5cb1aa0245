import type { Arg, CallOptions, Vim25Client } from "../client.js";
import { asMoRef } from "../parse.js";
import { Task } from "../task.js";
import { isMoRef, type MoRef } from "../types.js";

/** One snapshot of a VM as its snapshot tree shows it (VirtualMachineSnapshotTree), children flattened out. */
export interface SnapshotNode {
  ref: MoRef;
  name: string;
  description: string;
  /** ISO 8601, as vCenter sent it. */
  createTime: string;
  /** The VM's power state when the snapshot was taken. */
  state: string;
  quiesced: boolean;
  /** The parent snapshot; undefined for a root. */
  parent: MoRef | undefined;
  /** How deep in the tree: 0 for a root. */
  depth: number;
}

/** A VM's snapshots (VirtualMachineSnapshotInfo): every node of the tree, parents before children, and the current one. */
export interface SnapshotTree {
  snapshots: SnapshotNode[];
  current: MoRef | undefined;
}

/**
 * Reads the VirtualMachine `snapshot` property as decoded (unset while the VM has none): walks
 * `rootSnapshotList` and each `childSnapshotList` depth first, so a parent comes before its children.
 */
export function parseSnapshotTree(v: unknown): SnapshotTree {
  const info = (v ?? {}) as { currentSnapshot?: unknown; rootSnapshotList?: unknown };
  const snapshots: SnapshotNode[] = [];
  const walk = (list: unknown, parent: MoRef | undefined, depth: number) => {
    for (const raw of Array.isArray(list) ? list : list ? [list] : []) {
      const t = raw as Record<string, unknown>;
      if (!isMoRef(t.snapshot)) continue;
      snapshots.push({
        ref: t.snapshot,
        name: String(t.name ?? ""),
        description: typeof t.description === "string" ? t.description : "",
        createTime: String(t.createTime ?? ""),
        state: String(t.state ?? ""),
        quiesced: t.quiesced === true,
        parent,
        depth,
      });
      walk(t.childSnapshotList, t.snapshot, depth + 1);
    }
  };
  walk(info.rootSnapshotList, undefined, 0);
  return { snapshots, current: isMoRef(info.currentSnapshot) ? info.currentSnapshot : undefined };
}

/** A VirtualMachineSnapshot managed object (govmomi `object.VirtualMachineSnapshot`, reached through the VM's tree). */
export class VirtualMachineSnapshot {
  constructor(
    readonly client: Vim25Client,
    readonly ref: MoRef,
  ) {}

  private async startTask(method: string, args: readonly Arg[], opts: CallOptions): Promise<Task> {
    const r = await this.client.invoke(method, this.ref, args, { ...opts, returns: "MoRef" });
    return new Task(this.client, asMoRef(r, method), method);
  }

  /**
   * RevertToSnapshot_Task: the VM goes back to this snapshot, which becomes the current one.
   * The simulator only moves `currentSnapshot`: it restores no configuration and no power state.
   */
  revert(opts: CallOptions & { suppressPowerOn?: boolean } = {}): Promise<Task> {
    return this.startTask("RevertToSnapshot_Task", [["suppressPowerOn", opts.suppressPowerOn, "boolean"]], opts);
  }

  /**
   * RemoveSnapshot_Task. `removeChildren: false` keeps the snapshot's children (they move up to
   * its parent); a removed current snapshot makes its parent current.
   */
  remove(removeChildren: boolean, opts: CallOptions & { consolidate?: boolean } = {}): Promise<Task> {
    return this.startTask(
      "RemoveSnapshot_Task",
      [
        ["removeChildren", removeChildren, "boolean"],
        ["consolidate", opts.consolidate, "boolean"],
      ],
      opts,
    );
  }
}
