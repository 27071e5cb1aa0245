import type { CallOptions, Vim25Client } from "../client.js";
import { ValidationError } from "../errors.js";
import { asArray, asMoRef, asString, optMoRef } from "../parse.js";
import type { VirtualMachineConfigSpec } from "../specs.js";
import { defaultCollector } from "../property.js";
import { DatastoreProps, EntityProps, HostProps, VmProps } from "../props.js";
import { Task } from "../task.js";
import type { MoRef } from "../types.js";

/** `[LocalDS_0] dir/x.vmx` → `LocalDS_0`. */
export function datastoreOfPath(path: string): string | undefined {
  return /^\[([^\]]+)\]/.exec(path)?.[1];
}

/** A Folder managed object. */
export class Folder {
  constructor(
    readonly client: Vim25Client,
    readonly ref: MoRef,
  ) {}

  /**
   * CreateVM_Task in this (VM) folder; the task result is the new VM. `pool` is required; `host`
   * is optional in a DRS cluster. Checked before sending, because vcsim's handler crashes (connection
   * closed, a half-created VM left behind) where vCenter would fault: the pool must exist, and
   * `config.files.vmPathName` must name a datastore of the pool's compute resource (or of `host`).
   */
  async createVM(config: VirtualMachineConfigSpec, pool: MoRef, host?: MoRef, opts: CallOptions = {}): Promise<Task> {
    if (!pool?.value) throw new ValidationError("pool", "a resource pool is required");
    const vmPath = config.files?.vmPathName;
    if (vmPath === undefined) throw new ValidationError(VmProps.vmPathName, "required, e.g. \"[datastore1]\"");
    const dsName = datastoreOfPath(vmPath);
    if (dsName === undefined) throw new ValidationError(VmProps.vmPathName, `not a datastore path: ${vmPath}`);
    const reachable = await this.datastoreNames(pool, host, opts);
    if (!reachable.includes(dsName)) {
      throw new ValidationError(
        VmProps.vmPathName,
        `no datastore "${dsName}" is available to ${host ? `host ${host.value}` : `pool ${pool.value}`}`,
      );
    }
    const r = await this.client.invoke(
      "CreateVM_Task",
      this.ref,
      [
        ["config", config, "VirtualMachineConfigSpec"],
        ["pool", pool, "MoRef"],
        ["host", host, "MoRef"],
      ],
      { ...opts, returns: "MoRef" },
    );
    return new Task(this.client, asMoRef(r, "CreateVM_Task"), "CreateVM_Task");
  }

  /** CreateFolder: a child folder; returns its moref (DuplicateName if it exists). */
  async createFolder(name: string, opts: CallOptions = {}): Promise<MoRef> {
    const r = await this.client.invoke("CreateFolder", this.ref, [["name", name, "string"]], { ...opts, returns: "MoRef" });
    return asMoRef(r, "CreateFolder");
  }

  /** Names of the datastores of `host`, or of the compute resource owning `pool` (ManagedObjectNotFound if `pool` is gone). */
  private async datastoreNames(pool: MoRef, host: MoRef | undefined, opts: CallOptions): Promise<string[]> {
    const pc = defaultCollector(this.client);
    let holder = host;
    if (holder === undefined) {
      const [p] = await pc.retrieve([pool], ["owner"], opts);
      holder = optMoRef(p?.props.owner, "ResourcePool.owner");
      if (holder === undefined) throw new ValidationError("pool", `resource pool ${pool.value} has no owner`);
    } else {
      await pc.retrieve([pool], [EntityProps.name], opts);
    }
    // A host and a compute resource both name their datastores in `datastore`.
    const [h] = await pc.retrieve([holder], [HostProps.datastore], opts);
    const dss = asArray(h?.props[HostProps.datastore]).map((d, i) => asMoRef(d, `datastore[${i}]`));
    const named = await pc.retrieve(dss, [DatastoreProps.name], opts);
    return named.map((n, i) => asString(n.props[DatastoreProps.name], `datastore[${i}].name`));
  }
}
