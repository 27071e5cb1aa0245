// Typed argument objects for the vim25 methods this package wraps. Field names are the wire names;
// `_type` names the xsi:type where a slot is polymorphic. The encoder (codec.ts) orders fields per
// the XSD and refuses fields it does not know. Reference: vSphere Web Services API data objects.
import type { XsdValue } from "./codec.js";
import type { MoRef } from "./types.js";

/** OptionValue, e.g. an extraConfig entry. A plain value is sent as xsd:string/boolean/int. */
export interface OptionValue {
  key: string;
  value: string | number | boolean | XsdValue;
}

export interface VirtualMachineFileInfo {
  /** `[datastore] dir/name.vmx`, or just `[datastore]` to let vCenter choose the directory. */
  vmPathName?: string;
  snapshotDirectory?: string;
  suspendDirectory?: string;
  logDirectory?: string;
}

export interface Description {
  label: string;
  summary: string;
}

export interface VirtualDeviceConnectInfo {
  startConnected: boolean;
  allowGuestControl: boolean;
  connected: boolean;
}

interface VirtualDeviceFields {
  /** Negative for a device being added; other deviceChange entries refer to it by this key. */
  key: number;
  deviceInfo?: Description;
  connectable?: VirtualDeviceConnectInfo;
  controllerKey?: number;
  unitNumber?: number;
}

export type VirtualSCSISharing = "noSharing" | "virtualSharing" | "physicalSharing";

interface VirtualSCSIControllerFields extends VirtualDeviceFields {
  busNumber: number;
  sharedBus: VirtualSCSISharing;
  hotAddRemove?: boolean;
  scsiCtlrUnitNumber?: number;
}

export interface VirtualLsiLogicController extends VirtualSCSIControllerFields {
  _type: "VirtualLsiLogicController";
}
export interface VirtualLsiLogicSASController extends VirtualSCSIControllerFields {
  _type: "VirtualLsiLogicSASController";
}
export interface ParaVirtualSCSIController extends VirtualSCSIControllerFields {
  _type: "ParaVirtualSCSIController";
}

export type VirtualDiskMode =
  | "persistent"
  | "nonpersistent"
  | "undoable"
  | "independent_persistent"
  | "independent_nonpersistent"
  | "append";

export interface VirtualDiskFlatVer2BackingInfo {
  _type: "VirtualDiskFlatVer2BackingInfo";
  /** `[datastore] dir/disk.vmdk`; "" lets vCenter name it after the VM. */
  fileName: string;
  datastore?: MoRef;
  diskMode: VirtualDiskMode;
  split?: boolean;
  writeThrough?: boolean;
  thinProvisioned?: boolean;
  eagerlyScrub?: boolean;
  uuid?: string;
}

export interface VirtualDisk extends VirtualDeviceFields {
  _type: "VirtualDisk";
  backing: VirtualDiskFlatVer2BackingInfo;
  capacityInKB: number;
  capacityInBytes?: number;
}

export type VirtualDeviceSpec = VirtualLsiLogicController | VirtualLsiLogicSASController | ParaVirtualSCSIController | VirtualDisk;

export interface VirtualDeviceConfigSpec {
  operation?: "add" | "remove" | "edit";
  fileOperation?: "create" | "destroy" | "replace";
  device: VirtualDeviceSpec;
}

/** VirtualMachineConfigSpec (the commonly used subset). Unset fields are left unchanged by ReconfigVM_Task. */
export interface VirtualMachineConfigSpec {
  name?: string;
  guestId?: string;
  annotation?: string;
  files?: VirtualMachineFileInfo;
  numCPUs?: number;
  numCoresPerSocket?: number;
  memoryMB?: number;
  memoryHotAddEnabled?: boolean;
  cpuHotAddEnabled?: boolean;
  cpuHotRemoveEnabled?: boolean;
  deviceChange?: VirtualDeviceConfigSpec[];
  extraConfig?: OptionValue[];
  firmware?: "bios" | "efi";
}

export interface VirtualMachineRelocateSpec {
  folder?: MoRef;
  datastore?: MoRef;
  diskMoveType?: string;
  pool?: MoRef;
  host?: MoRef;
}

export interface VirtualMachineCloneSpec {
  location: VirtualMachineRelocateSpec;
  /** Mark the clone as a template. */
  template: boolean;
  /** Power the clone on (ignored by vcsim 0.24). */
  powerOn: boolean;
  config?: VirtualMachineConfigSpec;
  snapshot?: MoRef;
  memory?: boolean;
}

export type EventFilterRecursion = "self" | "children" | "all";

export interface EventFilterSpec {
  entity?: { entity: MoRef; recursion: EventFilterRecursion };
  time?: { beginTime?: Date | string; endTime?: Date | string };
  userName?: { systemUser: boolean; userList?: string[] };
  eventChainId?: number;
  alarm?: MoRef;
  disableFullMessage?: boolean;
  category?: string[];
  /** Event type names; a base type (e.g. "AlarmEvent") matches its subtypes. */
  eventTypeId?: string[];
  /** Size of a collector's latest page (CreateCollectorForEvents); at most 1000. */
  maxCount?: number;
}

/** An event argument naming an entity: `{ name, <kind>: MoRef }`. */
export interface EntityArg {
  name: string;
}

/**
 * An event for EventManager.PostEvent. `_type` is required (vcsim crashes on unknown types and
 * stores a plain Event without one); key/chainId/createdTime/userName are filled in when absent
 * because the XSD requires them (vCenter overwrites them).
 */
export interface PostableEvent {
  _type: string;
  key?: number;
  chainId?: number;
  createdTime?: Date | string;
  userName?: string;
  datacenter?: EntityArg & { datacenter: MoRef };
  computeResource?: EntityArg & { computeResource: MoRef };
  host?: EntityArg & { host: MoRef };
  /** Entity-filtered collectors match on these arguments, not on `entity`. */
  vm?: EntityArg & { vm: MoRef };
  ds?: EntityArg & { datastore: MoRef };
  fullFormattedMessage?: string;
  [field: string]: unknown;
}

export interface AlarmStatusChangedEventSpec extends PostableEvent {
  _type: "AlarmStatusChangedEvent";
  alarm: EntityArg & { alarm: MoRef };
  source: EntityArg & { entity: MoRef };
  entity: EntityArg & { entity: MoRef };
  from: string;
  to: string;
}
