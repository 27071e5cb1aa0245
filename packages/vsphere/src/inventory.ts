import type { CallOptions, Vim25Client } from "./client.js";
import { ProtocolError } from "./errors.js";
import {
  asArray,
  asMoRef,
  asNumber,
  asString,
  isObj,
  optBoolean,
  optMoRef,
  optNumber,
  optString,
} from "./parse.js";
import { defaultCollector, type ObjectProps, type RetrieveContainerOptions, type TraversalSpec } from "./property.js";
import { DatastoreProps, EntityProps, HostProps, VmProps } from "./props.js";
import { refKey, type MoRef } from "./types.js";

// Readers: fixed property path lists plus parsers that turn ObjectProps into typed summaries. Each
// list is read in one RetrievePropertiesEx (per object or over a ContainerView).

export type VmPowerState = "poweredOn" | "poweredOff" | "suspended";

export interface VmDisk {
  key: number;
  label: string | undefined;
  capacityInKB: number;
  /** `[datastore] dir/disk.vmdk` for file-backed disks. */
  fileName: string | undefined;
  datastore: MoRef | undefined;
}

export interface VmSummary {
  ref: MoRef;
  name: string;
  powerState: VmPowerState;
  /** Config-derived fields are undefined while a VM is being created (vCenter has no config yet). */
  numCPU: number | undefined;
  memoryMB: number | undefined;
  template: boolean;
  cpuHotAddEnabled: boolean;
  memoryHotAddEnabled: boolean;
  annotation: string;
  toolsRunningStatus: string | undefined;
  ipAddress: string | undefined;
  guestFullName: string | undefined;
  host: MoRef | undefined;
  datastores: MoRef[];
  disks: VmDisk[];
  /** Unset for templates. */
  resourcePool: MoRef | undefined;
  parent: MoRef | undefined;
}

export const VM_SUMMARY_PATHS = [
  VmProps.name,
  VmProps.powerState,
  VmProps.numCPU,
  VmProps.memoryMB,
  VmProps.template,
  VmProps.cpuHotAddEnabled,
  VmProps.memoryHotAddEnabled,
  VmProps.annotation,
  VmProps.toolsRunningStatus,
  VmProps.ipAddress,
  VmProps.guestFullName,
  VmProps.host,
  VmProps.datastore,
  VmProps.devices,
  VmProps.resourcePool,
  VmProps.parent,
] as const;

const POWER_STATES = new Set(["poweredOn", "poweredOff", "suspended"]);

function disksOf(devices: unknown, where: string): VmDisk[] {
  const out: VmDisk[] = [];
  for (const [i, d] of asArray(devices).entries()) {
    if (!isObj(d) || d._type !== "VirtualDisk") continue;
    const at = `${where}[${i}]`;
    const backing = isObj(d.backing) ? d.backing : {};
    const info = isObj(d.deviceInfo) ? d.deviceInfo : {};
    out.push({
      key: asNumber(d.key, `${at}.key`),
      label: optString(info.label, `${at}.deviceInfo.label`),
      capacityInKB: asNumber(d.capacityInKB, `${at}.capacityInKB`),
      fileName: optString(backing.fileName, `${at}.backing.fileName`),
      datastore: optMoRef(backing.datastore, `${at}.backing.datastore`),
    });
  }
  return out;
}

export function parseVmSummary(r: ObjectProps): VmSummary {
  const p = r.props;
  const at = (path: string): string => `${r.obj.value}.${path}`;
  const powerState = asString(p[VmProps.powerState], at(VmProps.powerState));
  if (!POWER_STATES.has(powerState)) throw new ProtocolError(`${at(VmProps.powerState)}: unknown state ${powerState}`);
  return {
    ref: r.obj,
    name: asString(p[VmProps.name] ?? "", at(VmProps.name)),
    powerState: powerState as VmPowerState,
    numCPU: optNumber(p[VmProps.numCPU], at(VmProps.numCPU)),
    memoryMB: optNumber(p[VmProps.memoryMB], at(VmProps.memoryMB)),
    template: optBoolean(p[VmProps.template], at(VmProps.template)) ?? false,
    cpuHotAddEnabled: optBoolean(p[VmProps.cpuHotAddEnabled], at(VmProps.cpuHotAddEnabled)) ?? false,
    memoryHotAddEnabled: optBoolean(p[VmProps.memoryHotAddEnabled], at(VmProps.memoryHotAddEnabled)) ?? false,
    annotation: optString(p[VmProps.annotation], at(VmProps.annotation)) ?? "",
    toolsRunningStatus: optString(p[VmProps.toolsRunningStatus], at(VmProps.toolsRunningStatus)),
    ipAddress: optString(p[VmProps.ipAddress], at(VmProps.ipAddress)),
    guestFullName: optString(p[VmProps.guestFullName], at(VmProps.guestFullName)),
    host: optMoRef(p[VmProps.host], at(VmProps.host)),
    datastores: asArray(p[VmProps.datastore]).map((d, i) => asMoRef(d, `${at(VmProps.datastore)}[${i}]`)),
    disks: disksOf(p[VmProps.devices], at(VmProps.devices)),
    resourcePool: optMoRef(p[VmProps.resourcePool], at(VmProps.resourcePool)),
    parent: optMoRef(p[VmProps.parent], at(VmProps.parent)),
  };
}

/** Summaries of every VM and template under `container` (default: the whole inventory). */
export async function listVmSummaries(client: Vim25Client, opts: RetrieveContainerOptions = {}): Promise<VmSummary[]> {
  const rs = await defaultCollector(client).retrieveContainer("VirtualMachine", VM_SUMMARY_PATHS, opts);
  return rs.map(parseVmSummary);
}

/** Summaries of specific VMs, in the order given; a deleted VM throws ManagedObjectNotFound. */
export async function readVmSummaries(client: Vim25Client, vms: readonly MoRef[], opts: CallOptions = {}): Promise<VmSummary[]> {
  const rs = await defaultCollector(client).retrieve(vms, VM_SUMMARY_PATHS, opts);
  return rs.map(parseVmSummary);
}

// ---------------------------------------------------------------- datastores

export interface DatastoreHostMount {
  host: MoRef;
  mounted: boolean | undefined;
  accessible: boolean | undefined;
  accessMode: string | undefined;
  path: string | undefined;
}

export interface DatastoreSummary {
  ref: MoRef;
  name: string;
  /** Bytes. */
  capacity: number;
  /** Bytes. */
  freeSpace: number;
  accessible: boolean;
  /** VMFS, NFS, vsan, ... */
  type: string;
  hosts: DatastoreHostMount[];
}

export const DATASTORE_PATHS = [
  DatastoreProps.name,
  DatastoreProps.capacity,
  DatastoreProps.freeSpace,
  DatastoreProps.accessible,
  DatastoreProps.type,
  DatastoreProps.host,
] as const;

export function parseDatastoreSummary(r: ObjectProps): DatastoreSummary {
  const p = r.props;
  const at = (path: string): string => `${r.obj.value}.${path}`;
  return {
    ref: r.obj,
    name: asString(p[DatastoreProps.name], at(DatastoreProps.name)),
    capacity: asNumber(p[DatastoreProps.capacity], at(DatastoreProps.capacity)),
    freeSpace: asNumber(p[DatastoreProps.freeSpace], at(DatastoreProps.freeSpace)),
    accessible: optBoolean(p[DatastoreProps.accessible], at(DatastoreProps.accessible)) ?? false,
    type: optString(p[DatastoreProps.type], at(DatastoreProps.type)) ?? "",
    hosts: asArray(p[DatastoreProps.host]).map((m, i) => {
      const mount = isObj(m) ? m : {};
      const info = isObj(mount.mountInfo) ? mount.mountInfo : {};
      const w = `${at(DatastoreProps.host)}[${i}]`;
      return {
        host: asMoRef(mount.key, `${w}.key`),
        mounted: optBoolean(info.mounted, `${w}.mountInfo.mounted`),
        accessible: optBoolean(info.accessible, `${w}.mountInfo.accessible`),
        accessMode: optString(info.accessMode, `${w}.mountInfo.accessMode`),
        path: optString(info.path, `${w}.mountInfo.path`),
      };
    }),
  };
}

export async function listDatastores(client: Vim25Client, opts: RetrieveContainerOptions = {}): Promise<DatastoreSummary[]> {
  const rs = await defaultCollector(client).retrieveContainer("Datastore", DATASTORE_PATHS, opts);
  return rs.map(parseDatastoreSummary);
}

// ---------------------------------------------------------------- hosts, pools, folders

export interface HostSummary {
  ref: MoRef;
  name: string;
  /** The ComputeResource or ClusterComputeResource. */
  parent: MoRef | undefined;
  connectionState: string | undefined;
  powerState: string | undefined;
  inMaintenanceMode: boolean;
  numCpuCores: number | undefined;
  /** Bytes. */
  memorySize: number | undefined;
  datastores: MoRef[];
}

export const HOST_PATHS = [
  HostProps.name,
  HostProps.parent,
  HostProps.connectionState,
  HostProps.powerState,
  HostProps.inMaintenanceMode,
  HostProps.numCpuCores,
  HostProps.memorySize,
  HostProps.datastore,
] as const;

export function parseHostSummary(r: ObjectProps): HostSummary {
  const p = r.props;
  const at = (path: string): string => `${r.obj.value}.${path}`;
  return {
    ref: r.obj,
    name: asString(p[HostProps.name], at(HostProps.name)),
    parent: optMoRef(p[HostProps.parent], at(HostProps.parent)),
    connectionState: optString(p[HostProps.connectionState], at(HostProps.connectionState)),
    powerState: optString(p[HostProps.powerState], at(HostProps.powerState)),
    inMaintenanceMode: optBoolean(p[HostProps.inMaintenanceMode], at(HostProps.inMaintenanceMode)) ?? false,
    numCpuCores: optNumber(p[HostProps.numCpuCores], at(HostProps.numCpuCores)),
    memorySize: optNumber(p[HostProps.memorySize], at(HostProps.memorySize)),
    datastores: asArray(p[HostProps.datastore]).map((d, i) => asMoRef(d, `${at(HostProps.datastore)}[${i}]`)),
  };
}

export async function listHosts(client: Vim25Client, opts: RetrieveContainerOptions = {}): Promise<HostSummary[]> {
  const rs = await defaultCollector(client).retrieveContainer("HostSystem", HOST_PATHS, opts);
  return rs.map(parseHostSummary);
}

export interface ResourcePoolSummary {
  ref: MoRef;
  name: string;
  parent: MoRef | undefined;
  /** The ComputeResource / cluster the pool belongs to. */
  owner: MoRef | undefined;
}

export const RESOURCE_POOL_PATHS = ["name", "parent", "owner"] as const;

export function parseResourcePool(r: ObjectProps): ResourcePoolSummary {
  const p = r.props;
  return {
    ref: r.obj,
    name: asString(p.name, `${r.obj.value}.name`),
    parent: optMoRef(p.parent, `${r.obj.value}.parent`),
    owner: optMoRef(p.owner, `${r.obj.value}.owner`),
  };
}

export async function listResourcePools(client: Vim25Client, opts: RetrieveContainerOptions = {}): Promise<ResourcePoolSummary[]> {
  const rs = await defaultCollector(client).retrieveContainer("ResourcePool", RESOURCE_POOL_PATHS, opts);
  return rs.map(parseResourcePool);
}

export interface FolderSummary {
  ref: MoRef;
  name: string;
  parent: MoRef | undefined;
  /** What the folder may hold, e.g. ["Folder", "VirtualMachine", "VirtualApp"]. */
  childType: string[];
}

export const FOLDER_PATHS = ["name", "parent", "childType"] as const;

export function parseFolder(r: ObjectProps): FolderSummary {
  const p = r.props;
  return {
    ref: r.obj,
    name: asString(p.name, `${r.obj.value}.name`),
    parent: optMoRef(p.parent, `${r.obj.value}.parent`),
    childType: asArray(p.childType).map((t, i) => asString(t, `${r.obj.value}.childType[${i}]`)),
  };
}

export async function listFolders(client: Vim25Client, opts: RetrieveContainerOptions = {}): Promise<FolderSummary[]> {
  const rs = await defaultCollector(client).retrieveContainer("Folder", FOLDER_PATHS, opts);
  return rs.map(parseFolder);
}

// ---------------------------------------------------------------- inventory path

/**
 * The inventory path of any managed entity (`/DC0/vm/sub/DC0_H0_VM0`), as FindByInventoryPath takes
 * it. One RetrievePropertiesEx follows `parent` up to the root folder with a recursive TraversalSpec
 * and returns every ancestor's name; the root folder ("Datacenters") is not part of the path.
 */
export async function inventoryPath(client: Vim25Client, ref: MoRef, opts: CallOptions = {}): Promise<string> {
  const results = await defaultCollector(client).retrievePropertiesEx(
    [
      {
        propSet: [{ type: "ManagedEntity", pathSet: [EntityProps.name, EntityProps.parent] }],
        objectSet: [{ obj: ref, skip: false, selectSet: [PARENT_CHAIN] }],
      },
    ],
    opts,
  );
  return inventoryPathFrom(client.serviceContent.rootFolder, ref, results);
}

/** A traversal from an entity up its `parent` chain to the root folder; read `name` and `parent` of ManagedEntity with it. */
export const PARENT_CHAIN: TraversalSpec = {
  _type: "TraversalSpec",
  name: "toParent",
  type: "ManagedEntity",
  path: "parent",
  skip: false,
  selectSet: [{ name: "toParent" }],
};

/** The inventory path of `ref` from a read that followed PARENT_CHAIN (other objects in it are ignored). */
export function inventoryPathFrom(rootFolder: MoRef, ref: MoRef, results: readonly ObjectProps[]): string {
  const byRef = new Map(results.map((r) => [refKey(r.obj), r.props]));
  const names: string[] = [];
  let cur: MoRef | undefined = ref;
  for (let depth = 0; cur !== undefined; depth++) {
    if (depth > 256) throw new ProtocolError(`inventory path of ${ref.value}: parent chain does not end`);
    const props = byRef.get(refKey(cur));
    if (props === undefined) throw new ProtocolError(`inventory path of ${ref.value}: ${cur.value} missing from the parent chain`);
    const parent = optMoRef(props.parent, `${cur.value}.parent`);
    if (parent === undefined) {
      // Only the root folder has no parent. Anything else (a VM in a vApp has `parentVApp`
      // instead) has no inventory path this walk can give: "/" would pass for one.
      if (refKey(cur) !== refKey(rootFolder)) throw new ProtocolError(`inventory path of ${ref.value}: ${cur.value} has no parent and is not the root folder`);
      break;
    }
    names.push(asString(props.name, `${cur.value}.name`));
    cur = parent;
  }
  return `/${names.reverse().join("/")}`;
}
