// Property paths, named once (govmomi's `mo.*` struct fields). Every read, filter and parser in the
// package and its callers spells a path through these, so a typo is a compile error, not a silently
// missing property.

/** VirtualMachine properties. */
export const VmProps = {
  name: "name",
  parent: "parent",
  powerState: "runtime.powerState",
  host: "runtime.host",
  numCPU: "config.hardware.numCPU",
  memoryMB: "config.hardware.memoryMB",
  devices: "config.hardware.device",
  template: "config.template",
  /** Changes on every reconfiguration (vCenter); the simulator leaves it unset. */
  changeVersion: "config.changeVersion",
  cpuHotAddEnabled: "config.cpuHotAddEnabled",
  memoryHotAddEnabled: "config.memoryHotAddEnabled",
  hotPlugMemoryLimit: "config.hotPlugMemoryLimit",
  hotPlugMemoryIncrementSize: "config.hotPlugMemoryIncrementSize",
  annotation: "config.annotation",
  extraConfig: "config.extraConfig",
  vmPathName: "config.files.vmPathName",
  uuid: "config.uuid",
  instanceUuid: "config.instanceUuid",
  toolsRunningStatus: "guest.toolsRunningStatus",
  toolsStatus: "guest.toolsStatus",
  ipAddress: "guest.ipAddress",
  guestFullName: "guest.guestFullName",
  datastore: "datastore",
  resourcePool: "resourcePool",
  /** The snapshot tree (VirtualMachineSnapshotInfo); unset while the VM has no snapshot. */
  snapshot: "snapshot",
  /** Custom attribute values (CustomFieldStringValue key/value), inherited from ManagedEntity. */
  customValue: "customValue",
} as const;

/** HostSystem properties. */
export const HostProps = {
  name: "name",
  parent: "parent",
  connectionState: "runtime.connectionState",
  powerState: "runtime.powerState",
  inMaintenanceMode: "runtime.inMaintenanceMode",
  numCpuCores: "summary.hardware.numCpuCores",
  memorySize: "summary.hardware.memorySize",
  datastore: "datastore",
} as const;

/** Datastore properties. */
export const DatastoreProps = {
  name: "name",
  capacity: "summary.capacity",
  freeSpace: "summary.freeSpace",
  accessible: "summary.accessible",
  type: "summary.type",
  host: "host",
} as const;

/** Task properties. */
export const TaskProps = {
  info: "info",
  state: "info.state",
  error: "info.error",
  result: "info.result",
} as const;

/** Properties every ManagedEntity has (folders, datacenters, pools, vApps...). */
export const EntityProps = {
  name: "name",
  parent: "parent",
} as const;
