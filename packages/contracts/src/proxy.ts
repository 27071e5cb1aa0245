import { z } from "zod";
import { CommandIdSchema, IsoTimeSchema, SlackUserIdSchema, TeamIdSchema, VmRefSchema, VmSummarySchema } from "./common.js";
import { NewVmNameSchema, PowerActionSchema, SnapshotNameSchema } from "./commands.js";

/**
 * vcenter-proxy: a NATS micro service; request/reply endpoints under `vcenter.`.
 * Errors come back as micro-service errors: `Nats-Service-Error-Code` (HTTP-like status) and
 * `Nats-Service-Error` (`<IAAS_CODE>: <message>`), with the CodedError JSON as the body.
 * Every request may name the vCenter (`vcenter`); without it the proxy's "default" one serves.
 */
const base = { vcenter: z.string().regex(/^[a-z0-9-]{1,32}$/).optional() };
const timeoutMs = z.number().int().min(1000).max(3_600_000).optional();

/**
 * The most VMs one vm-list answer holds, and the longest pattern it takes. A VM summary is a few
 * hundred bytes of JSON, so the answer stays far below NATS's 1 MiB max_payload (the proxy also
 * stops adding VMs at VM_LIST_MAX_BYTES).
 */
export const VM_LIST_MAX_VMS = 1000;
export const VM_LIST_MAX_GLOB = 255;
/** The bytes of VM summaries one vm-list answer may hold (JSON), under the 1 MiB max_payload. */
export const VM_LIST_MAX_BYTES = 768 * 1024;

/** The most VMs one vm-leases page holds (each a VM summary: far below max_payload). */
export const VM_LEASES_MAX_PAGE = 500;

const DatastoreNameSchema = z.string().min(1).max(255);

/** Where a new VM goes; unset fields fall back to the proxy's discovery (first datacenter, its default pool). */
export const PlacementSchema = z.strictObject({
  datacenter: z.string().min(1).optional(),
  /** Inventory path of the VM folder, e.g. `/DC0/vm`. */
  folder: z.string().min(1).optional(),
  /** Inventory path of a resource pool or cluster, e.g. `/DC0/host/DC0_C0/Resources`. */
  resourcePool: z.string().min(1).optional(),
  datastore: DatastoreNameSchema.optional(),
});
export type Placement = z.infer<typeof PlacementSchema>;

/**
 * Who made a VM through the product, for which team, and by which command: the owner and team
 * become the custom attributes `iaas.owner` and `iaas.team`, the request id goes into extraConfig.
 */
const ProvenanceSchema = z.strictObject({ owner: SlackUserIdSchema, team: TeamIdSchema.optional(), requestId: CommandIdSchema });

/** What VMs use, for quotas: VMs (not templates), vCPU, memory and provisioned disk. */
export const UsageSchema = z.strictObject({
  vms: z.number().int().nonnegative(),
  cpu: z.number().int().nonnegative(),
  memoryGB: z.number().nonnegative(),
  diskGB: z.number().nonnegative(),
});
export type Usage = z.infer<typeof UsageSchema>;

export const VmDiskSchema = z.strictObject({ label: z.string(), capacityGB: z.number().nonnegative(), datastore: z.string().optional(), file: z.string().optional() });

export const VmInfoSchema = VmSummarySchema.extend({
  guestOs: z.string().optional(),
  ipAddress: z.string().optional(),
  toolsStatus: z.string().optional(),
  host: z.string().optional(),
  datastores: z.array(z.string()),
  disks: z.array(VmDiskSchema),
  cpuHotAddEnabled: z.boolean(),
  memoryHotAddEnabled: z.boolean(),
  annotation: z.string().optional(),
  /** The product command that made the VM, if it was made through the product. */
  createdBy: z.string().optional(),
});
export type VmInfo = z.infer<typeof VmInfoSchema>;

export const DatastoreInfoSchema = z.strictObject({
  name: z.string(),
  moref: z.string(),
  capacityGB: z.number().nonnegative(),
  freeGB: z.number().nonnegative(),
  accessible: z.boolean(),
  type: z.string().optional(),
  /** Names of the hosts that mount it. */
  hosts: z.array(z.string()),
});
export type DatastoreInfo = z.infer<typeof DatastoreInfoSchema>;

export const TemplateInfoSchema = z.strictObject({
  name: z.string(),
  path: z.string().optional(),
  moref: z.string(),
  guestOs: z.string().optional(),
  numCpu: z.number().int().nonnegative(),
  memoryMB: z.number().int().nonnegative(),
});
export type TemplateInfo = z.infer<typeof TemplateInfoSchema>;

/** A vSphere event as read by the poller: the class, vCenter's key, and the data as vCenter sent it. */
export const VimEventSchema = z.strictObject({
  eventClass: z.string(),
  key: z.number().int(),
  createdTime: z.string(),
  data: z.record(z.string(), z.unknown()),
});
export type VimEvent = z.infer<typeof VimEventSchema>;

/**
 * Who made a snapshot through iaas: the snapshot's description reads `Made by iaas for <@U…>
 * (request <id>)` (visible in the vSphere Client). The retention sweep deletes only snapshots
 * marked so; a snapshot made any other way (the vSphere Client, a backup tool) has no such mark.
 */
export const SnapshotMadeBySchema = z.strictObject({ owner: SlackUserIdSchema, requestId: CommandIdSchema });
export type SnapshotMadeBy = z.infer<typeof SnapshotMadeBySchema>;

/** The description iaas gives the snapshots it makes (see SnapshotMadeBySchema). */
export function snapshotDescription(by: SnapshotMadeBy): string {
  return `Made by iaas for <@${by.owner}> (request ${by.requestId})`;
}

/** The mark of a snapshot iaas made, read back from its description; undefined for any other snapshot. */
export function snapshotMadeBy(description: string | undefined): SnapshotMadeBy | undefined {
  const m = /^Made by iaas for <@([A-Z0-9]+)> \(request ([A-Za-z0-9_-]+)\)$/.exec(description ?? "");
  if (!m) return undefined;
  const r = SnapshotMadeBySchema.safeParse({ owner: m[1], requestId: m[2] });
  return r.success ? r.data : undefined;
}

/** One snapshot of a VM, as the proxy reads the VM's snapshot tree. */
export const SnapshotInfoSchema = z.strictObject({
  /** Exactly as vSphere shows it (names made outside iaas may be anything, and repeat). */
  name: z.string().max(255),
  /** vCenter's id of the snapshot (`snapshot-123`). */
  moref: z.string(),
  createdAt: IsoTimeSchema,
  description: z.string().max(2000).optional(),
  /** The parent snapshot's name; none for a root. */
  parent: z.string().max(255).optional(),
  /** The snapshot the VM runs from now (a revert goes back to it by default). */
  current: z.boolean(),
  quiesced: z.boolean(),
  /** Set when iaas made it (the description's mark). */
  madeBy: SnapshotMadeBySchema.optional(),
});
export type SnapshotInfo = z.infer<typeof SnapshotInfoSchema>;

/** A snapshot iaas made, with the VM it is on: what the retention sweep considers. */
export const MadeSnapshotSchema = SnapshotInfoSchema.extend({
  madeBy: SnapshotMadeBySchema,
  vm: z.string(),
  vmMoref: z.string(),
  /** The VM's inventory path, when it could be read: the sweep names the VM by it (names may repeat). */
  vmPath: z.string().optional(),
});
export type MadeSnapshot = z.infer<typeof MadeSnapshotSchema>;

/** The most snapshots one snapshot-made answer holds. */
export const SNAPSHOTS_MADE_MAX = 1000;

export const ProxyEndpoints = {
  vmGet: {
    name: "vm-get",
    subject: "vcenter.vm.get",
    request: z.strictObject({ ...base, vm: VmRefSchema }),
    response: z.strictObject({ vm: VmSummarySchema }),
  },
  vmInfo: {
    name: "vm-info",
    subject: "vcenter.vm.info",
    request: z.strictObject({ ...base, vm: VmRefSchema }),
    response: z.strictObject({ vm: VmInfoSchema }),
  },
  vmList: {
    name: "vm-list",
    subject: "vcenter.vm.list",
    request: z.strictObject({
      ...base,
      /** Only VMs owned by this Slack user. */
      owner: SlackUserIdSchema.optional(),
      /**
       * Only VMs the caller's scope reaches: owned by `scope.owner` or whose team is one of
       * `scope.teams`. Unowned VMs are never in a scope. With `owner` as well, both must hold.
       */
      scope: z.strictObject({ owner: SlackUserIdSchema, teams: z.array(TeamIdSchema).max(200) }).optional(),
      includeTemplates: z.boolean().optional(),
      /**
       * Only VMs whose name matches this pattern (`*` any run of characters, `?` one; case-insensitive,
       * as vCenter's own search). Matched inside the proxy, so the answer holds only the matches.
       */
      glob: z.string().min(1).max(VM_LIST_MAX_GLOB).optional(),
      /**
       * At most this many VMs, the first by name; `total` counts all the matches. Without it the
       * proxy answers every match, or refuses (IAAS_TOO_LARGE) when there are more than
       * VM_LIST_MAX_VMS: an answer is bounded whatever the inventory.
       */
      limit: z.number().int().min(0).max(VM_LIST_MAX_VMS).optional(),
    }),
    response: z.strictObject({
      /** The matches, sorted by name; with `limit`, the first `limit` of them (fewer if the byte bound is reached). */
      vms: z.array(VmSummarySchema),
      /** How many VMs match, whether answered or not (a proxy before `limit` does not send it: `vms.length`). */
      total: z.number().int().nonnegative().optional(),
    }),
  },
  /**
   * What the VMs of one owner and/or one team use, counted from the custom attributes (for quotas).
   * Reflects every create, clone, delete and owner change this proxy has finished.
   */
  vmUsage: {
    name: "vm-usage",
    subject: "vcenter.vm.usage",
    request: z.strictObject({ ...base, owner: SlackUserIdSchema.optional(), team: TeamIdSchema.optional() }),
    response: z.strictObject({ owner: UsageSchema.optional(), team: UsageSchema.optional() }),
  },
  /**
   * Sets a VM's owner and/or team (custom attributes `iaas.owner`, `iaas.team`; `team: null`
   * clears it). Refuses a template (IAAS_INVALID_ARGUMENT). `changed: false` when already so.
   */
  vmSetOwner: {
    name: "vm-set-owner",
    subject: "vcenter.vm.owner",
    request: z.strictObject({ ...base, vm: VmRefSchema, owner: SlackUserIdSchema.optional(), team: TeamIdSchema.nullable().optional() }),
    response: z.strictObject({ vm: VmSummarySchema, changed: z.boolean() }),
  },
  /**
   * Sets a VM's lease end (custom attribute `iaas.lease.expires`, ISO 8601 UTC) or clears it
   * (`expires: null`, an empty value). Refuses a template. `changed: false` when already so.
   */
  vmSetLease: {
    name: "vm-set-lease",
    subject: "vcenter.vm.lease",
    request: z.strictObject({ ...base, vm: VmRefSchema, expires: IsoTimeSchema.nullable() }),
    response: z.strictObject({ vm: VmSummarySchema, changed: z.boolean() }),
  },
  /**
   * The VMs (not templates) whose `iaas.lease.expires` is set, valid (`leaseExpires`) or not
   * (`leaseInvalid`), by moref, one page at a time: `after` is the last moref of the page before;
   * `next` is set when there is more. From the live index when it is live (a lease set outside
   * the product reaches it with vCenter's property feed), else from vCenter, page by page.
   */
  vmLeases: {
    name: "vm-leases",
    subject: "vcenter.vm.leases",
    request: z.strictObject({ ...base, after: z.string().min(1).max(80).optional(), limit: z.number().int().min(1).max(VM_LEASES_MAX_PAGE).optional() }),
    response: z.strictObject({ vms: z.array(VmSummarySchema), next: z.string().optional() }),
  },
  templateList: {
    name: "template-list",
    subject: "vcenter.template.list",
    request: z.strictObject({ ...base }),
    response: z.strictObject({ templates: z.array(TemplateInfoSchema) }),
  },
  datastoreList: {
    name: "datastore-list",
    subject: "vcenter.datastore.list",
    request: z.strictObject({ ...base }),
    response: z.strictObject({ datastores: z.array(DatastoreInfoSchema) }),
  },
  vmPower: {
    name: "vm-power",
    subject: "vcenter.vm.power",
    request: z.strictObject({ ...base, vm: VmRefSchema, action: PowerActionSchema, timeoutMs }),
    response: z.strictObject({ vm: VmSummarySchema }),
  },
  /**
   * Creates a VM. Idempotent by `provenance.requestId`: a VM of that name already made by the same
   * request is returned (`created: false`), one made by anything else is IAAS_DUPLICATE_NAME.
   */
  vmCreate: {
    name: "vm-create",
    subject: "vcenter.vm.create",
    request: z.strictObject({
      ...base,
      name: NewVmNameSchema,
      cpu: z.number().int().min(1).max(768),
      memoryMB: z.number().int().min(4).max(24 * 1024 * 1024).multipleOf(4),
      diskGB: z.number().min(0.001).max(62 * 1024),
      guestId: z.string().regex(/^[A-Za-z0-9_]{1,64}$/).optional(),
      placement: PlacementSchema.optional(),
      provenance: ProvenanceSchema,
      timeoutMs,
    }),
    response: z.strictObject({ vm: VmSummarySchema, created: z.boolean() }),
  },
  /** Full clone of a VM, or a deploy when the source is a template; idempotent like vm-create. */
  vmClone: {
    name: "vm-clone",
    subject: "vcenter.vm.clone",
    request: z.strictObject({
      ...base,
      source: VmRefSchema,
      name: NewVmNameSchema,
      /** Expected kind of the source: "vm" refuses a template, "template" refuses a VM. */
      sourceKind: z.enum(["vm", "template"]),
      /** CPU and memory for the new VM (deploy with a size); the source's when unset. */
      cpu: z.number().int().min(1).max(768).optional(),
      memoryMB: z.number().int().min(4).max(24 * 1024 * 1024).multipleOf(4).optional(),
      powerOn: z.boolean().optional(),
      placement: PlacementSchema.optional(),
      provenance: ProvenanceSchema,
      timeoutMs,
    }),
    response: z.strictObject({ vm: VmSummarySchema, created: z.boolean() }),
  },
  /**
   * Deletes a VM (powering it off first when asked). A VM already gone: `destroyed: false`.
   * `expect`: delete only the VM of this moref whose lease still ends at `leaseExpires` (the lease
   * keeper's delete after the grace); a VM changed meanwhile is refused with IAAS_INVALID_STATE.
   */
  vmDestroy: {
    name: "vm-destroy",
    subject: "vcenter.vm.destroy",
    request: z.strictObject({ ...base, vm: VmRefSchema, powerOffFirst: z.boolean().optional(), expect: z.strictObject({ moref: z.string().min(1).max(80), leaseExpires: IsoTimeSchema }).optional(), timeoutMs }),
    response: z.strictObject({ name: z.string(), destroyed: z.boolean() }),
  },
  /**
   * Changes CPU and/or memory. On a powered-on VM only increases within hot-add are made;
   * anything vCenter would refuse is refused here with IAAS_HOT_ADD_DISABLED or IAAS_INVALID_POWER_STATE.
   */
  vmReconfigure: {
    name: "vm-reconfigure",
    subject: "vcenter.vm.reconfigure",
    request: z.strictObject({
      ...base,
      vm: VmRefSchema,
      cpu: z.number().int().min(1).max(768).optional(),
      memoryMB: z.number().int().min(4).max(24 * 1024 * 1024).multipleOf(4).optional(),
      timeoutMs,
    }),
    response: z.strictObject({ vm: VmInfoSchema, changed: z.boolean() }),
  },
  /** Storage vMotion to another datastore. */
  vmRelocate: {
    name: "vm-relocate",
    subject: "vcenter.vm.relocate",
    request: z.strictObject({ ...base, vm: VmRefSchema, datastore: DatastoreNameSchema, timeoutMs }),
    response: z.strictObject({ vm: VmInfoSchema, moved: z.boolean() }),
  },
  /** VMs on a datastore (for evacuation). */
  datastoreVms: {
    name: "datastore-vms",
    subject: "vcenter.datastore.vms",
    request: z.strictObject({ ...base, datastore: DatastoreNameSchema }),
    response: z.strictObject({ vms: z.array(VmSummarySchema) }),
  },
  /**
   * Acknowledges a triggered alarm on the object it fired on (AlarmManager.AcknowledgeAlarm), once
   * remediation has acted on it. `unsupported` when the vCenter has no working AlarmManager (the
   * simulator answers MethodNotFound): nothing was done, and nothing needs to be.
   */
  alarmAcknowledge: {
    name: "alarm-acknowledge",
    subject: "vcenter.alarm.acknowledge",
    request: z.strictObject({
      ...base,
      /** The alarm's MoRef value, e.g. `alarm-6`. */
      alarm: z.string().regex(/^[A-Za-z0-9_.:-]{1,80}$/),
      entity: z.strictObject({ type: z.enum(["VirtualMachine", "Datastore", "HostSystem", "ClusterComputeResource"]), value: z.string().regex(/^[A-Za-z0-9_.:-]{1,80}$/) }),
    }),
    response: z.strictObject({ acknowledged: z.boolean(), unsupported: z.boolean() }),
  },
  /**
   * vCenter events with a key greater than `afterKey`, oldest first (for the poller). Reads around the
   * simulator's collector quirks; `latestKey` is the newest key vCenter has, even if filtered out.
   */
  eventsRead: {
    name: "events-read",
    subject: "vcenter.events.read",
    request: z.strictObject({ ...base, afterKey: z.number().int().min(0).optional(), eventTypes: z.array(z.string().regex(/^[A-Za-z]{1,80}$/)).max(50).optional(), maxCount: z.number().int().min(1).max(1000).optional() }),
    response: z.strictObject({ events: z.array(VimEventSchema), latestKey: z.number().int().optional() }),
  },
  /** A VM's snapshots, parents before children (`vm.snapshots` counts them). */
  snapshotList: {
    name: "snapshot-list",
    subject: "vcenter.vm.snapshot.list",
    request: z.strictObject({ ...base, vm: VmRefSchema }),
    response: z.strictObject({ vm: VmSummarySchema, snapshots: z.array(SnapshotInfoSchema) }),
  },
  /**
   * Takes a snapshot without memory, quiesced only when VMware Tools run in the guest, marked as
   * made by iaas (`madeBy`: its description). Idempotent by `madeBy.requestId`: a snapshot of that
   * name made by the same request is the answer (`created: false`); one made by anything else is
   * IAAS_SNAPSHOT_EXISTS. With `limit`, a VM that already has that many snapshots (all of them,
   * not only iaas's) is refused with IAAS_SNAPSHOT_LIMIT.
   */
  snapshotCreate: {
    name: "snapshot-create",
    subject: "vcenter.vm.snapshot.create",
    request: z.strictObject({ ...base, vm: VmRefSchema, name: SnapshotNameSchema, madeBy: SnapshotMadeBySchema, limit: z.number().int().min(1).max(1000).optional(), timeoutMs }),
    response: z.strictObject({ vm: VmSummarySchema, snapshot: SnapshotInfoSchema, created: z.boolean() }),
  },
  /**
   * Reverts the VM to the named snapshot, or to the current one without a name. No such snapshot:
   * IAAS_SNAPSHOT_NOT_FOUND; two of that name: IAAS_INVALID_ARGUMENT. Safe to repeat.
   */
  snapshotRevert: {
    name: "snapshot-revert",
    subject: "vcenter.vm.snapshot.revert",
    request: z.strictObject({ ...base, vm: VmRefSchema, name: SnapshotNameSchema.optional(), timeoutMs }),
    response: z.strictObject({ vm: VmSummarySchema, snapshot: SnapshotInfoSchema }),
  },
  /**
   * Removes one snapshot, keeping its children. With `moref`, only that snapshot, and only while
   * it still has the name given (the sweep's guard against acting on a stale read). Nothing of
   * that name (any more): `removed: false`.
   */
  snapshotRemove: {
    name: "snapshot-remove",
    subject: "vcenter.vm.snapshot.remove",
    request: z.strictObject({ ...base, vm: VmRefSchema, name: SnapshotNameSchema, moref: z.string().regex(/^[A-Za-z0-9_-]{1,80}$/).optional(), timeoutMs }),
    response: z.strictObject({ vm: z.string(), removed: z.boolean(), snapshot: SnapshotInfoSchema.optional() }),
  },
  /**
   * The snapshots iaas made (the description's mark) on every VM, taken before `before`, oldest
   * first, at most `limit` (default and most SNAPSHOTS_MADE_MAX). Read from vCenter each time:
   * the retention sweep's view of what exists.
   */
  snapshotsMade: {
    name: "snapshots-made",
    subject: "vcenter.snapshot.made",
    request: z.strictObject({ ...base, before: IsoTimeSchema.optional(), limit: z.number().int().min(1).max(SNAPSHOTS_MADE_MAX).optional() }),
    response: z.strictObject({ snapshots: z.array(MadeSnapshotSchema) }),
  },
} as const;

export type ProxyEndpointName = keyof typeof ProxyEndpoints;
export type ProxyRequest<E extends ProxyEndpointName> = z.infer<(typeof ProxyEndpoints)[E]["request"]>;
export type ProxyResponse<E extends ProxyEndpointName> = z.infer<(typeof ProxyEndpoints)[E]["response"]>;

