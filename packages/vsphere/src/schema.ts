/**
 * The slice of the vim25 XML schema this client needs: for each data object, its base type and its own
 * fields in XSD sequence order. SOAP requires elements in that order, so encoding walks the base chain
 * first. Decoding uses the same table to turn text into numbers/booleans and to know which fields are
 * arrays (a one-element array looks like a scalar on the wire).
 *
 * Reference: vSphere Web Services API, "Data Object Types"
 * (https://developer.broadcom.com/xapis/vsphere-web-services-api/latest/). Field lists are partial where
 * noted: a field not listed is decoded generically and refused by the encoder.
 *
 * Notation: `Base|field field:type field:type[]`; the default type is `string`. Primitive types: string,
 * int, long, short, byte, boolean, double, float, dateTime, base64Binary, any (xsd:anyType, carries
 * xsi:type), MoRef (ManagedObjectReference).
 */
const DEFS: Record<string, string> = {
  DynamicData: "|",
  MethodFault: "|faultCause:LocalizedMethodFault faultMessage:LocalizableMessage[]",
  LocalizedMethodFault: "DynamicData|fault:MethodFault localizedMessage",
  LocalizableMessage: "DynamicData|key arg:KeyAnyValue[] message",
  KeyAnyValue: "DynamicData|key value:any",
  OptionValue: "DynamicData|key value:any",

  // Property collector
  ObjectSpec: "DynamicData|obj:MoRef skip:boolean selectSet:SelectionSpec[]",
  PropertySpec: "DynamicData|type all:boolean pathSet:string[]",
  PropertyFilterSpec: "DynamicData|propSet:PropertySpec[] objectSet:ObjectSpec[] reportMissingObjectsInResults:boolean",
  SelectionSpec: "DynamicData|name",
  TraversalSpec: "SelectionSpec|type path skip:boolean selectSet:SelectionSpec[]",
  RetrieveOptions: "DynamicData|maxObjects:int",
  WaitOptions: "DynamicData|maxWaitSeconds:int maxObjectUpdates:int",
  ObjectContent: "DynamicData|obj:MoRef propSet:DynamicProperty[] missingSet:MissingProperty[]",
  DynamicProperty: "|name val:any",
  MissingProperty: "DynamicData|path fault:LocalizedMethodFault",
  RetrieveResult: "DynamicData|token objects:ObjectContent[]",
  UpdateSet: "DynamicData|version filterSet:PropertyFilterUpdate[] truncated:boolean",
  PropertyFilterUpdate: "DynamicData|filter:MoRef objectSet:ObjectUpdate[] missingSet:MissingObject[]",
  ObjectUpdate: "DynamicData|kind obj:MoRef changeSet:PropertyChange[] missingSet:MissingProperty[]",
  PropertyChange: "DynamicData|name op val:any",
  MissingObject: "DynamicData|obj:MoRef fault:LocalizedMethodFault",

  // Session and tasks
  UserSession:
    "DynamicData|key userName fullName loginTime:dateTime lastActiveTime:dateTime locale messageLocale " +
    "extensionSession:boolean ipAddress userAgent callCount:long",
  TaskReason: "DynamicData|",
  TaskInfo:
    "DynamicData|key task:MoRef description:LocalizableMessage name descriptionId entity:MoRef entityName " +
    "locked:MoRef[] state cancelled:boolean cancelable:boolean error:LocalizedMethodFault result:any progress:int " +
    "reason:TaskReason queueTime:dateTime startTime:dateTime completeTime:dateTime eventChainId:int changeTag " +
    "parentTaskKey rootTaskKey activationId",

  // Virtual machine configuration (VirtualMachineConfigSpec is partial: the fields listed keep XSD order)
  VirtualMachineConfigSpec:
    "DynamicData|changeVersion name version createDate:dateTime uuid instanceUuid locationId guestId " +
    "alternateGuestName annotation files:VirtualMachineFileInfo numCPUs:int numCoresPerSocket:int memoryMB:long " +
    "memoryHotAddEnabled:boolean cpuHotAddEnabled:boolean cpuHotRemoveEnabled:boolean " +
    "deviceChange:VirtualDeviceConfigSpec[] cpuAllocation:ResourceAllocationInfo " +
    "memoryAllocation:ResourceAllocationInfo extraConfig:OptionValue[] swapPlacement firmware",
  VirtualMachineFileInfo: "DynamicData|vmPathName snapshotDirectory suspendDirectory logDirectory ftMetadataDirectory",
  ResourceAllocationInfo:
    "DynamicData|reservation:long expandableReservation:boolean limit:long shares:SharesInfo overheadLimit:long",
  SharesInfo: "DynamicData|shares:int level",
  VirtualDeviceConfigSpec: "DynamicData|operation fileOperation device:VirtualDevice",
  VirtualHardware:
    "DynamicData|numCPU:int numCoresPerSocket:int memoryMB:int virtualICH7MPresent:boolean " +
    "virtualSMCPresent:boolean device:VirtualDevice[]",
  Description: "DynamicData|label summary",
  VirtualDevice:
    "DynamicData|key:int deviceInfo:Description backing:VirtualDeviceBackingInfo " +
    "connectable:VirtualDeviceConnectInfo slotInfo:VirtualDeviceBusSlotInfo controllerKey:int unitNumber:int",
  VirtualDeviceConnectInfo:
    "DynamicData|migrateConnect startConnected:boolean allowGuestControl:boolean connected:boolean status",
  VirtualDeviceBusSlotInfo: "DynamicData|",
  VirtualDevicePciBusSlotInfo: "VirtualDeviceBusSlotInfo|pciSlotNumber:int",
  VirtualController: "VirtualDevice|busNumber:int device:int[]",
  VirtualIDEController: "VirtualController|",
  VirtualPCIController: "VirtualController|",
  VirtualPS2Controller: "VirtualController|",
  VirtualSIOController: "VirtualController|",
  VirtualSCSIController: "VirtualController|hotAddRemove:boolean sharedBus scsiCtlrUnitNumber:int",
  VirtualLsiLogicController: "VirtualSCSIController|",
  VirtualLsiLogicSASController: "VirtualSCSIController|",
  ParaVirtualSCSIController: "VirtualSCSIController|",
  VirtualBusLogicController: "VirtualSCSIController|",
  // partial: shares, storageIOAllocation and later fields are not needed
  VirtualDisk: "VirtualDevice|capacityInKB:long capacityInBytes:long",
  VirtualEthernetCard: "VirtualDevice|addressType macAddress wakeOnLanEnabled:boolean",
  VirtualE1000: "VirtualEthernetCard|",
  VirtualE1000e: "VirtualEthernetCard|",
  VirtualVmxnet: "VirtualEthernetCard|",
  VirtualVmxnet3: "VirtualVmxnet|",
  VirtualCdrom: "VirtualDevice|",
  VirtualDeviceBackingInfo: "DynamicData|",
  VirtualDeviceFileBackingInfo: "VirtualDeviceBackingInfo|fileName datastore:MoRef backingObjectId",
  VirtualDiskFlatVer2BackingInfo:
    "VirtualDeviceFileBackingInfo|diskMode split:boolean writeThrough:boolean thinProvisioned:boolean " +
    "eagerlyScrub:boolean uuid contentId changeId parent:VirtualDiskFlatVer2BackingInfo deltaDiskFormat " +
    "digestEnabled:boolean deltaGrainSize:int deltaDiskFormatVariant sharing",
  // partial: service is not supported
  VirtualMachineRelocateSpec:
    "DynamicData|folder:MoRef datastore:MoRef diskMoveType pool:MoRef host:MoRef " +
    "disk:VirtualMachineRelocateSpecDiskLocator[] transform deviceChange:VirtualDeviceConfigSpec[]",
  VirtualMachineRelocateSpecDiskLocator:
    "DynamicData|diskId:int datastore:MoRef diskMoveType diskBackingInfo:VirtualDeviceBackingInfo",
  // partial: customization is not supported
  VirtualMachineCloneSpec:
    "DynamicData|location:VirtualMachineRelocateSpec template:boolean config:VirtualMachineConfigSpec " +
    "powerOn:boolean snapshot:MoRef memory:boolean",

  // Snapshots (VirtualMachine.snapshot)
  VirtualMachineSnapshotInfo: "DynamicData|currentSnapshot:MoRef rootSnapshotList:VirtualMachineSnapshotTree[]",
  VirtualMachineSnapshotTree:
    "DynamicData|snapshot:MoRef vm:MoRef name description id:int createTime:dateTime state quiesced:boolean " +
    "backupManifest childSnapshotList:VirtualMachineSnapshotTree[] replaySupported:boolean",

  // Custom attributes (CustomFieldsManager)
  CustomFieldDef:
    "DynamicData|key:int name type managedObjectType fieldDefPrivileges:PrivilegePolicyDef " +
    "fieldInstancePrivileges:PrivilegePolicyDef",
  PrivilegePolicyDef: "DynamicData|createPrivilege readPrivilege updatePrivilege deletePrivilege",
  CustomFieldValue: "DynamicData|key:int",
  CustomFieldStringValue: "CustomFieldValue|value",

  // Datastores
  DatastoreSummary:
    "DynamicData|datastore:MoRef name url capacity:long freeSpace:long uncommitted:long accessible:boolean " +
    "multipleHostAccess:boolean type maintenanceMode",
  DatastoreHostMount: "DynamicData|key:MoRef mountInfo:HostMountInfo",
  HostMountInfo: "DynamicData|path accessMode mounted:boolean accessible:boolean inaccessibleReason",

  // Events
  EventFilterSpec:
    "DynamicData|entity:EventFilterSpecByEntity time:EventFilterSpecByTime userName:EventFilterSpecByUsername " +
    "eventChainId:int alarm:MoRef scheduledTask:MoRef disableFullMessage:boolean category:string[] type:string[] " +
    "tag:string[] eventTypeId:string[] maxCount:int",
  EventFilterSpecByEntity: "DynamicData|entity:MoRef recursion",
  EventFilterSpecByTime: "DynamicData|beginTime:dateTime endTime:dateTime",
  EventFilterSpecByUsername: "DynamicData|systemUser:boolean userList:string[]",
  Event:
    "DynamicData|key:int chainId:int createdTime:dateTime userName datacenter:DatacenterEventArgument " +
    "computeResource:ComputeResourceEventArgument host:HostEventArgument vm:VmEventArgument " +
    "ds:DatastoreEventArgument net:NetworkEventArgument dvs:DvsEventArgument fullFormattedMessage changeTag",
  GeneralEvent: "Event|message",
  GeneralUserEvent: "GeneralEvent|entity:ManagedEntityEventArgument",
  AlarmEvent: "Event|alarm:AlarmEventArgument",
  AlarmStatusChangedEvent: "AlarmEvent|source:ManagedEntityEventArgument entity:ManagedEntityEventArgument from to",
  EventArgument: "DynamicData|",
  EntityEventArgument: "EventArgument|name",
  DatacenterEventArgument: "EntityEventArgument|datacenter:MoRef",
  ComputeResourceEventArgument: "EntityEventArgument|computeResource:MoRef",
  HostEventArgument: "EntityEventArgument|host:MoRef",
  VmEventArgument: "EntityEventArgument|vm:MoRef",
  DatastoreEventArgument: "EntityEventArgument|datastore:MoRef",
  NetworkEventArgument: "EntityEventArgument|network:MoRef",
  DvsEventArgument: "EntityEventArgument|dvs:MoRef",
  AlarmEventArgument: "EntityEventArgument|alarm:MoRef",
  ManagedEntityEventArgument: "EntityEventArgument|entity:MoRef",
};

export const PRIMITIVES = new Set([
  "string",
  "int",
  "long",
  "short",
  "byte",
  "boolean",
  "double",
  "float",
  "dateTime",
  "base64Binary",
  "anyURI",
  "any",
  "MoRef",
]);

export interface FieldDef {
  readonly name: string;
  readonly type: string;
  readonly array: boolean;
}

export interface TypeDef {
  readonly name: string;
  readonly base: string | undefined;
  /** All fields in XSD order, inherited ones first. */
  readonly fields: readonly FieldDef[];
  readonly byName: ReadonlyMap<string, FieldDef>;
}

const cache = new Map<string, TypeDef | null>();

function parseOwnFields(spec: string): FieldDef[] {
  return spec
    .split(/\s+/)
    .filter((s) => s !== "")
    .map((tok) => {
      const [name = "", rawType = "string"] = tok.split(":");
      const array = rawType.endsWith("[]");
      return { name, type: array ? rawType.slice(0, -2) : rawType, array };
    });
}

/** The definition of a data object type, or undefined for types outside the table. */
export function typeDef(name: string): TypeDef | undefined {
  const hit = cache.get(name);
  if (hit !== undefined) return hit ?? undefined;
  const raw = DEFS[name];
  if (raw === undefined) {
    cache.set(name, null);
    return undefined;
  }
  const [baseName = "", own = ""] = raw.split("|");
  const base = baseName === "" ? undefined : typeDef(baseName);
  if (baseName !== "" && base === undefined) throw new Error(`schema: ${name} extends unknown type ${baseName}`);
  const fields = [...(base?.fields ?? []), ...parseOwnFields(own)];
  const def: TypeDef = {
    name,
    base: baseName === "" ? undefined : baseName,
    fields,
    byName: new Map(fields.map((f) => [f.name, f])),
  };
  cache.set(name, def);
  return def;
}

/** True when `sub` is `sup` or derives from it according to the table. */
export function isSubtype(sub: string, sup: string): boolean {
  for (let t: string | undefined = sub; t !== undefined; t = typeDef(t)?.base) {
    if (t === sup) return true;
  }
  return false;
}

/** Names of every type in the table (for tests). */
export function knownTypes(): string[] {
  return Object.keys(DEFS);
}
