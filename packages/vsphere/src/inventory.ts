import type { CallOptions, VimClient } from "./client.js";
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
import type { ObjectProps, RetrieveContainerOptions } from "./property.js";
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
  "name",
  "runtime.powerState",
  "config.hardware.numCPU",
  "config.hardware.memoryMB",
  "config.template",
  "config.cpuHotAddEnabled",
  "config.memoryHotAddEnabled",
  "config.annotation",
  "guest.toolsRunningStatus",
  "guest.ipAddress",
  "guest.guestFullName",
  "runtime.host",
  "datastore",
  "config.hardware.device",
  "resourcePool",
  "parent",
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
  const powerState = asString(p["runtime.powerState"], at("runtime.powerState"));
  if (!POWER_STATES.has(powerState)) throw new ProtocolError(`${at("runtime.powerState")}: unknown state ${powerState}`);
  return {
    ref: r.obj,
    name: asString(p.name ?? "", at("name")),
    powerState: powerState as VmPowerState,
    numCPU: optNumber(p["config.hardware.numCPU"], at("config.hardware.numCPU")),
    memoryMB: optNumber(p["config.hardware.memoryMB"], at("config.hardware.memoryMB")),
    template: optBoolean(p["config.template"], at("config.template")) ?? false,
    cpuHotAddEnabled: optBoolean(p["config.cpuHotAddEnabled"], at("config.cpuHotAddEnabled")) ?? false,
    memoryHotAddEnabled: optBoolean(p["config.memoryHotAddEnabled"], at("config.memoryHotAddEnabled")) ?? false,
    annotation: optString(p["config.annotation"], at("config.annotation")) ?? "",
    toolsRunningStatus: optString(p["guest.toolsRunningStatus"], at("guest.toolsRunningStatus")),
    ipAddress: optString(p["guest.ipAddress"], at("guest.ipAddress")),
    guestFullName: optString(p["guest.guestFullName"], at("guest.guestFullName")),
    host: optMoRef(p["runtime.host"], at("runtime.host")),
    datastores: asArray(p.datastore).map((d, i) => asMoRef(d, `${at("datastore")}[${i}]`)),
    disks: disksOf(p["config.hardware.device"], at("config.hardware.device")),
    resourcePool: optMoRef(p.resourcePool, at("resourcePool")),
    parent: optMoRef(p.parent, at("parent")),
  };
}

/** Summaries of every VM and template under `container` (default: the whole inventory). */
export async function listVmSummaries(client: VimClient, opts: RetrieveContainerOptions = {}): Promise<VmSummary[]> {
  const rs = await client.retrieveContainer("VirtualMachine", VM_SUMMARY_PATHS, opts);
  return rs.map(parseVmSummary);
}

/** Summaries of specific VMs, in the order given; a deleted VM throws ManagedObjectNotFound. */
export async function readVmSummaries(client: VimClient, vms: readonly MoRef[], opts: CallOptions = {}): Promise<VmSummary[]> {
  const rs = await client.retrieve(vms, VM_SUMMARY_PATHS, opts);
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

export const DATASTORE_PATHS = ["name", "summary.capacity", "summary.freeSpace", "summary.accessible", "summary.type", "host"] as const;

export function parseDatastoreSummary(r: ObjectProps): DatastoreSummary {
  const p = r.props;
  const at = (path: string): string => `${r.obj.value}.${path}`;
  return {
    ref: r.obj,
    name: asString(p.name, at("name")),
    capacity: asNumber(p["summary.capacity"], at("summary.capacity")),
    freeSpace: asNumber(p["summary.freeSpace"], at("summary.freeSpace")),
    accessible: optBoolean(p["summary.accessible"], at("summary.accessible")) ?? false,
    type: optString(p["summary.type"], at("summary.type")) ?? "",
    hosts: asArray(p.host).map((m, i) => {
      const mount = isObj(m) ? m : {};
      const info = isObj(mount.mountInfo) ? mount.mountInfo : {};
      const w = `${at("host")}[${i}]`;
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

export async function listDatastores(client: VimClient, opts: RetrieveContainerOptions = {}): Promise<DatastoreSummary[]> {
  const rs = await client.retrieveContainer("Datastore", DATASTORE_PATHS, opts);
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
  "name",
  "parent",
  "runtime.connectionState",
  "runtime.powerState",
  "runtime.inMaintenanceMode",
  "summary.hardware.numCpuCores",
  "summary.hardware.memorySize",
  "datastore",
] as const;

export function parseHostSummary(r: ObjectProps): HostSummary {
  const p = r.props;
  const at = (path: string): string => `${r.obj.value}.${path}`;
  return {
    ref: r.obj,
    name: asString(p.name, at("name")),
    parent: optMoRef(p.parent, at("parent")),
    connectionState: optString(p["runtime.connectionState"], at("runtime.connectionState")),
    powerState: optString(p["runtime.powerState"], at("runtime.powerState")),
    inMaintenanceMode: optBoolean(p["runtime.inMaintenanceMode"], at("runtime.inMaintenanceMode")) ?? false,
    numCpuCores: optNumber(p["summary.hardware.numCpuCores"], at("summary.hardware.numCpuCores")),
    memorySize: optNumber(p["summary.hardware.memorySize"], at("summary.hardware.memorySize")),
    datastores: asArray(p.datastore).map((d, i) => asMoRef(d, `${at("datastore")}[${i}]`)),
  };
}

export async function listHosts(client: VimClient, opts: RetrieveContainerOptions = {}): Promise<HostSummary[]> {
  const rs = await client.retrieveContainer("HostSystem", HOST_PATHS, opts);
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

export async function listResourcePools(client: VimClient, opts: RetrieveContainerOptions = {}): Promise<ResourcePoolSummary[]> {
  const rs = await client.retrieveContainer("ResourcePool", RESOURCE_POOL_PATHS, opts);
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

export async function listFolders(client: VimClient, opts: RetrieveContainerOptions = {}): Promise<FolderSummary[]> {
  const rs = await client.retrieveContainer("Folder", FOLDER_PATHS, opts);
  return rs.map(parseFolder);
}

// ---------------------------------------------------------------- inventory path

/**
 * The inventory path of any managed entity (`/DC0/vm/sub/DC0_H0_VM0`), as FindByInventoryPath takes
 * it. One RetrievePropertiesEx follows `parent` up to the root folder with a recursive TraversalSpec
 * and returns every ancestor's name; the root folder ("Datacenters") is not part of the path.
 */
export async function inventoryPath(client: VimClient, ref: MoRef, opts: CallOptions = {}): Promise<string> {
  const results = await client.propertyCollector.retrievePropertiesEx(
    [
      {
        propSet: [{ type: "ManagedEntity", pathSet: ["name", "parent"] }],
        objectSet: [
          {
            obj: ref,
            skip: false,
            selectSet: [
              {
                _type: "TraversalSpec",
                name: "toParent",
                type: "ManagedEntity",
                path: "parent",
                skip: false,
                selectSet: [{ name: "toParent" }],
              },
            ],
          },
        ],
      },
    ],
    opts,
  );
  const byRef = new Map(results.map((r) => [refKey(r.obj), r.props]));
  const names: string[] = [];
  let cur: MoRef | undefined = ref;
  for (let depth = 0; cur !== undefined; depth++) {
    if (depth > 256) throw new ProtocolError(`inventory path of ${ref.value}: parent chain does not end`);
    const props = byRef.get(refKey(cur));
    if (props === undefined) throw new ProtocolError(`inventory path of ${ref.value}: ${cur.value} missing from the parent chain`);
    const parent = optMoRef(props.parent, `${cur.value}.parent`);
    if (parent === undefined) break; // the root folder
    names.push(asString(props.name, `${cur.value}.name`));
    cur = parent;
  }
  return `/${names.reverse().join("/")}`;
}
