import type { Arg, CallOptions, Vim25Client } from "../client.js";
import { ValidationError } from "../errors.js";
import { asMoRef } from "../parse.js";
import type { VirtualMachineCloneSpec, VirtualMachineConfigSpec, VirtualMachineRelocateSpec } from "../specs.js";
import { Task } from "../task.js";
import type { MoRef } from "../types.js";
import { VM_SUMMARY_PATHS, inventoryPath, parseVmSummary, type VmSummary } from "../inventory.js";
import { defaultCollector } from "../property.js";
import { VmProps } from "../props.js";
import { parseSnapshotTree, type SnapshotTree } from "./virtual_machine_snapshot.js";

/** A VirtualMachine managed object (govmomi `object.VirtualMachine`). `*_Task` methods return a Task to wait on. */
export class VirtualMachine {
  constructor(
    readonly client: Vim25Client,
    readonly ref: MoRef,
  ) {}

  private async startTask(method: string, args: readonly Arg[], opts: CallOptions): Promise<Task> {
    const r = await this.client.invoke(method, this.ref, args, { ...opts, returns: "MoRef" });
    return new Task(this.client, asMoRef(r, method), method);
  }

  /** PowerOnVM_Task. Already on → task error InvalidPowerState; a template → SOAP fault InvalidState. */
  powerOn(host?: MoRef, opts: CallOptions = {}): Promise<Task> {
    return this.startTask("PowerOnVM_Task", [["host", host, "MoRef"]], opts);
  }

  /** PowerOffVM_Task (hard power off). Already off → task error InvalidPowerState. */
  powerOff(opts: CallOptions = {}): Promise<Task> {
    return this.startTask("PowerOffVM_Task", [], opts);
  }

  /** ResetVM_Task (hard reset). */
  reset(opts: CallOptions = {}): Promise<Task> {
    return this.startTask("ResetVM_Task", [], opts);
  }

  /** SuspendVM_Task. */
  suspend(opts: CallOptions = {}): Promise<Task> {
    return this.startTask("SuspendVM_Task", [], opts);
  }

  /** ShutdownGuest: asks VMware Tools to shut the guest down and returns at once (vCenter: ToolsUnavailable without tools). */
  async shutdownGuest(opts: CallOptions = {}): Promise<void> {
    await this.client.invoke("ShutdownGuest", this.ref, [], opts);
  }

  /** RebootGuest through VMware Tools (vcsim 0.24: MethodNotFound). */
  async rebootGuest(opts: CallOptions = {}): Promise<void> {
    await this.client.invoke("RebootGuest", this.ref, [], opts);
  }

  /** StandbyGuest through VMware Tools (vcsim 0.24: MethodNotFound). */
  async standbyGuest(opts: CallOptions = {}): Promise<void> {
    await this.client.invoke("StandbyGuest", this.ref, [], opts);
  }

  /** Destroy_Task: deletes the VM and its files. Powered on → task error InvalidPowerState. */
  destroy(opts: CallOptions = {}): Promise<Task> {
    return this.startTask("Destroy_Task", [], opts);
  }

  /** ReconfigVM_Task. */
  reconfigure(spec: VirtualMachineConfigSpec, opts: CallOptions = {}): Promise<Task> {
    return this.startTask("ReconfigVM_Task", [["spec", spec, "VirtualMachineConfigSpec"]], opts);
  }

  /**
   * CloneVM_Task into `folder` as `name`; the task result is the new VM. From a template,
   * `spec.location.pool` is required (InvalidArgument otherwise).
   */
  async clone(folder: MoRef, name: string, spec: VirtualMachineCloneSpec, opts: CallOptions = {}): Promise<Task> {
    if (spec.location.datastore) await this.assertExists(spec.location.datastore, "spec.location.datastore", opts);
    return this.startTask(
      "CloneVM_Task",
      [
        ["folder", folder, "MoRef"],
        ["name", name, "string"],
        ["spec", spec, "VirtualMachineCloneSpec"],
      ],
      opts,
    );
  }

  /**
   * RelocateVM_Task (storage and/or compute migration). A datastore that does not exist is refused
   * with ManagedObjectNotFound before the call: vcsim's handler crashes on one.
   */
  async relocate(
    spec: VirtualMachineRelocateSpec,
    priority: "defaultPriority" | "highPriority" | "lowPriority" = "defaultPriority",
    opts: CallOptions = {},
  ): Promise<Task> {
    if (spec.datastore) await this.assertExists(spec.datastore, "spec.datastore", opts);
    return this.startTask(
      "RelocateVM_Task",
      [
        ["spec", spec, "VirtualMachineRelocateSpec"],
        ["priority", priority, "string"],
      ],
      opts,
    );
  }

  /**
   * CreateSnapshot_Task; the task result is the new snapshot, which becomes the current one.
   * `memory: true` also saves the running memory (powered-on VMs only); `quiesce: true` asks
   * VMware Tools to quiesce the guest file systems first (vCenter faults without running Tools).
   * vCenter accepts a name already used on the VM: a caller that wants unique names checks first.
   */
  createSnapshot(name: string, spec: { description?: string; memory: boolean; quiesce: boolean }, opts: CallOptions = {}): Promise<Task> {
    if (name === "") throw new ValidationError("name", "a snapshot name is required");
    return this.startTask(
      "CreateSnapshot_Task",
      [
        ["name", name, "string"],
        ["description", spec.description, "string"],
        ["memory", spec.memory, "boolean"],
        ["quiesce", spec.quiesce, "boolean"],
      ],
      opts,
    );
  }

  /** RevertToCurrentSnapshot_Task. No current snapshot → SOAP fault NotFound (the simulator: nothing else changes). */
  revertToCurrentSnapshot(opts: CallOptions & { suppressPowerOn?: boolean } = {}): Promise<Task> {
    return this.startTask("RevertToCurrentSnapshot_Task", [["suppressPowerOn", opts.suppressPowerOn, "boolean"]], opts);
  }

  /** The snapshot tree (the `snapshot` property), flattened; empty when the VM has none. */
  async snapshotTree(opts: CallOptions = {}): Promise<SnapshotTree> {
    const props = await this.properties([VmProps.snapshot], opts);
    return parseSnapshotTree(props[VmProps.snapshot]);
  }

  /** MarkAsTemplate (synchronous). Powered on → InvalidPowerState; already a template → NotSupported. */
  async markAsTemplate(opts: CallOptions = {}): Promise<void> {
    await this.client.invoke("MarkAsTemplate", this.ref, [], opts);
  }

  /** MarkAsVirtualMachine (synchronous); `pool` is required by vCenter (vcsim accepts none and leaves no pool). */
  async markAsVirtualMachine(pool: MoRef, host?: MoRef, opts: CallOptions = {}): Promise<void> {
    if (!pool?.value) throw new ValidationError("pool", "a resource pool is required");
    await this.client.invoke(
      "MarkAsVirtualMachine",
      this.ref,
      [
        ["pool", pool, "MoRef"],
        ["host", host, "MoRef"],
      ],
      opts,
    );
  }

  /** Reads the given property paths; a path vCenter cannot read throws its fault (e.g. InvalidProperty). */
  async properties(paths: readonly string[], opts: CallOptions = {}): Promise<Record<string, unknown>> {
    const [r] = await defaultCollector(this.client).retrieve([this.ref], paths, opts);
    const fault = r ? Object.values(r.missing)[0] : undefined;
    if (fault) throw fault;
    return r?.props ?? {};
  }

  /** The summary the proxy needs, in one round trip. */
  async summary(opts: CallOptions = {}): Promise<VmSummary> {
    const [r] = await defaultCollector(this.client).retrieve([this.ref], VM_SUMMARY_PATHS, opts);
    if (r === undefined) throw new Error("unreachable: retrieve returns one entry per object");
    return parseVmSummary(r);
  }

  /** `/DC0/vm/folder/name`, from the parent chain in one round trip. */
  inventoryPath(opts: CallOptions = {}): Promise<string> {
    return inventoryPath(this.client, this.ref, opts);
  }

  private async assertExists(ref: MoRef, field: string, opts: CallOptions): Promise<void> {
    if (!ref.value) throw new ValidationError(field, "empty managed object reference");
    // ManagedObjectNotFound from the server if it does not exist.
    await defaultCollector(this.client).retrieve([ref], [VmProps.name], opts);
  }
}
