import { IaasError, type Placement } from "@iaas/contracts";
import { listDatastores, refKey, type MoRef } from "@iaas/vsphere";
import type { Vcenter } from "./vcenter.js";

export interface ResolvedPlacement {
  folder: MoRef;
  pool: MoRef;
  /** The compute resource (cluster or standalone host) owning the pool. */
  computeResource: MoRef;
  datastore: { ref: MoRef; name: string };
}

/**
 * Turns the policy's placement (names and inventory paths) into morefs. Unset parts are found:
 * the first datacenter, its VM folder, the first cluster's root pool, and of the datastores that
 * pool's hosts reach, the one with the most free space. Anything named but missing is an error.
 */
export async function resolvePlacement(vc: Vcenter, p: Placement = {}, need: { datastore: boolean } = { datastore: true }): Promise<ResolvedPlacement> {
  const c = vc.client;
  const dcs = await c.retrieveContainer("Datacenter", ["name", "vmFolder", "hostFolder"]);
  const dc = p.datacenter ? dcs.find((d) => d.props.name === p.datacenter) : dcs[0];
  if (!dc) throw new IaasError("IAAS_INVALID_ARGUMENT", p.datacenter ? `placement: no datacenter named \`${p.datacenter}\`.` : "placement: vCenter has no datacenter.");
  const dcName = String(dc.props.name);

  const byPath = async (path: string, what: string, types: string[]): Promise<MoRef> => {
    const ref = await c.searchIndex.findByInventoryPath(path);
    if (!ref || !types.includes(ref.type)) throw new IaasError("IAAS_INVALID_ARGUMENT", `placement: no ${what} at \`${path}\`.`);
    return ref;
  };

  const folder = p.folder ? await byPath(p.folder, "VM folder", ["Folder"]) : (dc.props.vmFolder as MoRef);

  let pool: MoRef;
  if (p.resourcePool) {
    const ref = await byPath(p.resourcePool, "resource pool or cluster", ["ResourcePool", "ClusterComputeResource", "ComputeResource"]);
    pool = ref.type === "ResourcePool" ? ref : ((await c.retrieve([ref], ["resourcePool"]))[0]?.props.resourcePool as MoRef);
  } else {
    const crs = await c.retrieveContainer("ComputeResource", ["name", "resourcePool"], { container: dc.props.hostFolder as MoRef });
    // Prefer a cluster (DRS places the VM) over a standalone host.
    const cr = crs.find((r) => r.obj.type === "ClusterComputeResource") ?? crs[0];
    if (!cr) throw new IaasError("IAAS_INVALID_ARGUMENT", `placement: datacenter \`${dcName}\` has no cluster or host.`);
    pool = cr.props.resourcePool as MoRef;
  }
  const [poolProps] = await c.retrieve([pool], ["owner"]);
  const computeResource = poolProps?.props.owner as MoRef;
  const [crProps] = await c.retrieve([computeResource], ["datastore"]);
  const reachable = new Set(((crProps?.props.datastore as MoRef[] | MoRef | undefined) ? ([] as MoRef[]).concat(crProps!.props.datastore as MoRef[]) : []).map(refKey));

  if (!need.datastore) return { folder, pool, computeResource, datastore: { ref: { type: "Datastore", value: "" }, name: "" } };
  const all = (await listDatastores(c)).filter((d) => reachable.has(refKey(d.ref)));
  let ds;
  if (p.datastore) {
    ds = all.find((d) => d.name === p.datastore);
    if (!ds) throw new IaasError("IAAS_INVALID_ARGUMENT", `placement: datastore \`${p.datastore}\` does not exist or is not reachable from the target pool.`);
  } else {
    ds = all.filter((d) => d.accessible).sort((a, b) => b.freeSpace - a.freeSpace)[0];
    if (!ds) throw new IaasError("IAAS_INSUFFICIENT_RESOURCES", "placement: no accessible datastore is reachable from the target pool.");
  }
  return { folder, pool, computeResource, datastore: { ref: ds.ref, name: ds.name } };
}
