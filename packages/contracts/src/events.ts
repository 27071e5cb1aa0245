import { createHash } from "node:crypto";
import { z } from "zod";
import type { CommandAudit } from "./audit.js";
import { IsoTimeSchema } from "./common.js";
import { Subjects } from "./subjects.js";
import { token } from "./tokens.js";

/**
 * An event class as VEBA names it: the vSphere event class (`AlarmStatusChangedEvent`), or for
 * `EventEx` / `ExtendedEvent` the dotted event type id (`com.vmware.vc.HA.ClusterFailoverActionCompletedEvent`),
 * which is what VEBA puts in `subject` (router) or in the type (`com.vmware.vsphere.<id>.v0`).
 * Each dot-separated part must be a subject token, so a class can never widen or redirect a subject.
 */
/** An event class usable as subject levels: dot-separated parts of A-Z a-z 0-9 _ - (EventClassSchema's rule). */
export const EventClassPattern = /^[A-Za-z0-9_-]{1,128}(\.[A-Za-z0-9_-]{1,128})*$/;

export const EventClassSchema = z
  .string()
  .max(255, "is longer than 255 characters")
  .regex(EventClassPattern, "must be dot-separated parts of A-Z a-z 0-9 _ -");

/** vCenter's event key (`Event.key`, an int): unique and increasing per vCenter. */
export const EventKeySchema = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/**
 * `vsphere.event.<EventClass>` (stream VSPHERE_EVENTS): one vCenter event, from VEBA through the
 * bridge or from the poller. Identity is `source`, `key`, class and creation time; the Nats-Msg-Id is
 * `eventMsgId(event)` so the stream drops a repeat within its duplicate window, whichever path it came by.
 */
export const VsphereEventSchema = z.strictObject({
  /** The CloudEvent id (a UUID for VEBA's router, often the key for VSphereSource); the poller sets the key. */
  id: z.string().min(1).max(256),
  /** The vCenter the event came from, e.g. `https://vcenter.example.com/sdk` (the CloudEvent source). */
  source: z.string().min(1).max(1024),
  eventClass: EventClassSchema,
  /** `data.Key`. */
  key: EventKeySchema,
  /** When vCenter created the event (`data.CreatedTime`); the CloudEvent time when that is missing. */
  time: IsoTimeSchema,
  /** When the bridge (or the poller) received it. */
  receivedAt: IsoTimeSchema,
  via: z.enum(["veba", "poller"]),
  /** The CloudEvent type as sent, e.g. `com.vmware.event.router/event` (not set by the poller). */
  ceType: z.string().min(1).max(512).optional(),
  /** The vSphere event as sent: PascalCase Go field names from VEBA, camelCase tolerated. Read it with `normalizeVsphereEvent`. */
  data: z.record(z.string(), z.unknown()),
});
export type VsphereEvent = z.infer<typeof VsphereEventSchema>;

/**
 * The subject an event is published on. A plain class is one token (`Subjects.event`); a dotted
 * EventEx id keeps its dots as subject levels, each checked as a token, so operators can filter
 * e.g. `vsphere.event.com.vmware.vc.HA.>`.
 */
export function eventSubject(eventClass: string): string {
  const [first, ...rest] = eventClass.split(".");
  return [Subjects.event(first ?? ""), ...rest.map((p) => token(p, "event class part"))].join(".");
}

/** What makes an event itself, for its Nats-Msg-Id: a VsphereEvent has all of it. */
export type EventIdentity = Pick<VsphereEvent, "source" | "eventClass" | "key" | "id" | "data">;

/**
 * The JetStream Nats-Msg-Id of an event, and the id remediation remembers it by: its vCenter
 * (`source`), `data.Key`, its class and vCenter's `CreatedTime`, so an event of another class, or
 * one made up before, that carries the same Key is not taken for it (the Key alone is guessable:
 * it only counts up). VEBA and the poller give the same event the same id. Without a CreatedTime
 * the CloudEvent id stands in for it (what a sender retrying the same event repeats).
 * `<source>#<key>#<class>#<created>` when that is short printable ASCII without another `#`,
 * otherwise `sha256:<hash of the four>#<key>` (header values must be one printable line).
 */
export function eventMsgId(ev: EventIdentity): string {
  const created = readEventCreatedTime(ev.data);
  const basis = created ?? `id:${ev.id}`;
  const parts = [ev.source, String(ev.key), ev.eventClass, basis];
  const plain = parts.join("#");
  if (plain.length <= 200 && /^[\x21-\x22\x24-\x7e]+$/.test(parts.join(""))) return plain;
  return `sha256:${createHash("sha256").update(JSON.stringify(parts)).digest("hex")}#${ev.key}`;
}

/**
 * The Nats-Msg-Ids of what a command leads to, by command id. Each is stable across redeliveries,
 * so the stream's duplicate window drops a repeat: the final result and the dead letter once per
 * command, an audit record once per outcome (the gateway's rejection and a handler's result are
 * both `<id>:audit:<outcome>`), progress once per delivery and step.
 */
export const CommandMsgIds = {
  /** The command itself: its id. */
  command: (id: string): string => id,
  progress: (id: string, delivery: number, step: number): string => `${id}:progress:${delivery}:${step}`,
  final: (id: string): string => `${id}:final`,
  audit: (id: string, outcome: CommandAudit["outcome"]): string => `${id}:audit:${outcome}`,
  deadLetter: (id: string): string => `${id}:dlq`,
} as const;

const ObjRefSchema = z.strictObject({
  /** The managed object type, e.g. `VirtualMachine`, `Datastore`, `HostSystem`. */
  type: z.string(),
  /** The MoRef value, e.g. `vm-42`; missing when the event carries only the name. */
  value: z.string().optional(),
  name: z.string().optional(),
});
export type ObjRef = z.infer<typeof ObjRefSchema>;

/** What readers of events (remediation) need, read tolerantly out of `data`. Not a wire message. */
export const NormalizedVsphereEventSchema = z.strictObject({
  eventClass: z.string(),
  key: EventKeySchema,
  createdTime: z.string().optional(),
  userName: z.string().optional(),
  /** `FullFormattedMessage`. */
  message: z.string().optional(),
  /** EventEx / ExtendedEvent only. */
  eventTypeId: z.string().optional(),
  /** AlarmStatusChangedEvent and other alarm events. */
  alarmName: z.string().optional(),
  alarm: ObjRefSchema.optional(),
  /** Alarm status before and after, lower case: `gray`, `green`, `yellow`, `red`. */
  from: z.string().optional(),
  to: z.string().optional(),
  /**
   * The object the event is about: `Entity` (alarm events), else the task's entity, else an
   * EventEx's object, else the VM, host, datastore, compute resource or datacenter it names.
   */
  entity: ObjRefSchema.optional(),
  vm: ObjRefSchema.optional(),
  host: ObjRefSchema.optional(),
  datastore: ObjRefSchema.optional(),
  computeResource: ObjRefSchema.optional(),
  datacenter: ObjRefSchema.optional(),
});
export type NormalizedVsphereEvent = z.infer<typeof NormalizedVsphereEventSchema>;

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * A field by its PascalCase name (as VEBA's Go encoding writes govmomi types), or its camelCase
 * form (`Key`/`key`, `FullFormattedMessage`/`fullFormattedMessage`): the first that is not null.
 */
export function eventField(obj: unknown, pascal: string): unknown {
  if (!isObj(obj)) return undefined;
  const camel = pascal.charAt(0).toLowerCase() + pascal.slice(1);
  for (const k of [pascal, camel]) {
    if (Object.hasOwn(obj, k) && obj[k] !== null && obj[k] !== undefined) return obj[k];
  }
  return undefined;
}

function fieldPath(obj: unknown, ...names: string[]): unknown {
  let cur = obj;
  for (const n of names) cur = eventField(cur, n);
  return cur;
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

/** `data.Key` (or `key`): an integer, or a string of digits. Undefined when missing or not a key. */
export function readEventKey(data: unknown): number | undefined {
  const k = eventField(data, "Key");
  const n = typeof k === "string" && /^[0-9]{1,15}$/.test(k) ? Number(k) : k;
  return EventKeySchema.safeParse(n).success ? (n as number) : undefined;
}

/** `data.CreatedTime` as an ISO time, when present and a valid date. */
export function readEventCreatedTime(data: unknown): string | undefined {
  const t = str(eventField(data, "CreatedTime"));
  if (!t) return undefined;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

/** A MoRef `{Type, Value}` (or `{type, value}`). */
function moRef(v: unknown): { type?: string; value?: string } {
  return { type: str(eventField(v, "Type")), value: str(eventField(v, "Value")) };
}

/**
 * An event argument such as `Vm: { Name, Vm: { Type, Value } }` (vSphere's VmEventArgument and
 * friends): `field` names the argument in the event, `inner` the MoRef inside it.
 */
function argument(data: unknown, field: string, inner: string, defaultType: string): ObjRef | undefined {
  const arg = eventField(data, field);
  if (!isObj(arg)) return undefined;
  const ref = moRef(eventField(arg, inner));
  const name = str(eventField(arg, "Name"));
  if (!ref.value && !name) return undefined;
  return compact({ type: ref.type ?? defaultType, value: ref.value, name });
}

function compact(r: { type: string; value?: string | undefined; name?: string | undefined }): ObjRef {
  return { type: r.type, ...(r.value ? { value: r.value } : {}), ...(r.name ? { name: r.name } : {}) };
}

/**
 * Reads the facts remediation needs out of a vSphere event's `data`, PascalCase or camelCase.
 * Throws a TypeError when `data.Key` is missing: every vCenter event has one, and the bridge
 * refuses events without it.
 */
export function normalizeEventData(eventClass: string, data: unknown): NormalizedVsphereEvent {
  const key = readEventKey(data);
  if (key === undefined) throw new TypeError("the event has no data.Key");
  return normalize(eventClass, key, data);
}

/** The normalized view of a message from `vsphere.event.>` (its `key` is already checked). */
export function normalizeVsphereEvent(ev: VsphereEvent): NormalizedVsphereEvent {
  return normalize(ev.eventClass, ev.key, ev.data);
}

function normalize(eventClass: string, key: number, data: unknown): NormalizedVsphereEvent {
  const vmArg = argument(data, "Vm", "Vm", "VirtualMachine");
  const hostArg = argument(data, "Host", "Host", "HostSystem");
  const dsArg = argument(data, "Ds", "Datastore", "Datastore");
  const crArg = argument(data, "ComputeResource", "ComputeResource", "ComputeResource");
  const dcArg = argument(data, "Datacenter", "Datacenter", "Datacenter");
  const alarmArg = argument(data, "Alarm", "Alarm", "Alarm");

  let entity = argument(data, "Entity", "Entity", "ManagedEntity");
  if (!entity) {
    // TaskEvent: Info.Entity (a MoRef) and Info.EntityName.
    const ref = moRef(fieldPath(data, "Info", "Entity"));
    const name = str(fieldPath(data, "Info", "EntityName"));
    if (ref.type && (ref.value || name)) entity = compact({ type: ref.type, value: ref.value, name });
  }
  if (!entity) {
    // EventEx: ObjectType / ObjectId / ObjectName (often empty).
    const type = str(eventField(data, "ObjectType"));
    const value = str(eventField(data, "ObjectId"));
    if (type && value) entity = compact({ type, value, name: str(eventField(data, "ObjectName")) });
  }
  entity ??= vmArg ?? hostArg ?? dsArg ?? crArg ?? dcArg;

  const sameType = (t: string) => (entity?.type === t ? entity : undefined);
  const lower = (v: unknown) => str(v)?.toLowerCase();
  return withoutUndefined<NormalizedVsphereEvent>({
    eventClass,
    key,
    createdTime: readEventCreatedTime(data),
    userName: str(eventField(data, "UserName")),
    message: str(eventField(data, "FullFormattedMessage")),
    eventTypeId: str(eventField(data, "EventTypeId")),
    alarmName: alarmArg?.name,
    alarm: alarmArg,
    from: lower(eventField(data, "From")),
    to: lower(eventField(data, "To")),
    entity,
    vm: vmArg ?? sameType("VirtualMachine"),
    host: hostArg ?? sameType("HostSystem"),
    datastore: dsArg ?? sameType("Datastore"),
    computeResource: crArg ?? sameType("ClusterComputeResource") ?? sameType("ComputeResource"),
    datacenter: dcArg ?? sameType("Datacenter"),
  });
}

/** Leaves out what the event does not carry, so results are easy to compare and log. */
function withoutUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
