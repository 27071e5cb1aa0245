// @iaas/vsphere: a typed vim25 SOAP client shaped like govmomi. See README.md.
export { VimClient } from "./service_instance.js";
export {
  Vim25Client,
  type ServiceManager,
  type VimClientOptions,
  type ClientStats,
  type CallOptions,
  type InvokeOptions,
  type Arg,
  type Logger,
} from "./client.js";
export {
  VsphereError,
  VimFault,
  TransportError,
  TimeoutError,
  ProtocolError,
  ValidationError,
  isVimFault,
  faultAncestry,
} from "./errors.js";
export { moRef, isMoRef, sameRef, refKey, type MoRef, type ServiceContent, type AboutInfo, type UserSession, type DataObject } from "./types.js";
export {
  PropertyCollector,
  ViewManager,
  ContainerView,
  defaultCollector,
  defaultViewManager,
  faultFromLocalized,
  type WaitForOptions,
  type ObjectProps,
  type RetrieveContainerOptions,
  type PropertyFilterSpec,
  type PropertySpec,
  type ObjectSpec,
  type TraversalSpec,
  type SelectionSpec,
} from "./property.js";
export { VmIndex, type IndexedVm, type NotedVm, type VmChange, type VmIndexOptions } from "./vm_index.js";
export { VmProps, HostProps, DatastoreProps, TaskProps, EntityProps } from "./props.js";
export { Task, TASK_STATE_PATHS, type TaskInfo, type TaskOutcome, type TaskState, type WaitOptions } from "./task.js";
export { SearchIndex } from "./objects/search_index.js";
export { SessionManager } from "./objects/session_manager.js";
export { VirtualMachine } from "./objects/virtual_machine.js";
export { VirtualMachineSnapshot, parseSnapshotTree, type SnapshotNode, type SnapshotTree } from "./objects/virtual_machine_snapshot.js";
export { Folder, datastoreOfPath } from "./objects/folder.js";
export { CustomFieldsManager, CustomFieldsProps, parseCustomFieldDef, parseCustomValues, type CustomFieldDef } from "./objects/custom_fields_manager.js";
export { EventManager, EventHistoryCollector, parseEvent, type VimEvent } from "./objects/event_manager.js";
export {
  VM_SUMMARY_PATHS,
  DATASTORE_PATHS,
  HOST_PATHS,
  RESOURCE_POOL_PATHS,
  FOLDER_PATHS,
  parseVmSummary,
  parseDatastoreSummary,
  parseHostSummary,
  parseResourcePool,
  parseFolder,
  listVmSummaries,
  readVmSummaries,
  listDatastores,
  listHosts,
  listResourcePools,
  listFolders,
  inventoryPath,
  inventoryPathFrom,
  PARENT_CHAIN,
  type VmSummary,
  type VmDisk,
  type VmPowerState,
  type DatastoreSummary,
  type DatastoreHostMount,
  type HostSummary,
  type ResourcePoolSummary,
  type FolderSummary,
} from "./inventory.js";
export type {
  OptionValue,
  VirtualMachineFileInfo,
  Description,
  VirtualDeviceConnectInfo,
  VirtualLsiLogicController,
  VirtualLsiLogicSASController,
  ParaVirtualSCSIController,
  VirtualSCSISharing,
  VirtualDisk,
  VirtualDiskMode,
  VirtualDiskFlatVer2BackingInfo,
  VirtualDeviceSpec,
  VirtualDeviceConfigSpec,
  VirtualMachineConfigSpec,
  VirtualMachineRelocateSpec,
  VirtualMachineCloneSpec,
  EventFilterSpec,
  EventFilterRecursion,
  EntityArg,
  PostableEvent,
  AlarmStatusChangedEventSpec,
} from "./specs.js";
export { encodeValue, decodeNode, type XsdValue } from "./codec.js";
export { escapeText, escapeAttr, decodeEntities, parseXml } from "./xml.js";
export { ElementSplitter } from "./xml_stream.js";
