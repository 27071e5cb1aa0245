/** A managed object reference: `<obj type="VirtualMachine">vm-42</obj>`. */
export interface MoRef {
  readonly type: string;
  readonly value: string;
}

export function moRef(type: string, value: string): MoRef {
  return { type, value };
}

export function isMoRef(v: unknown): v is MoRef {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  return typeof o.type === "string" && typeof o.value === "string" && Object.keys(o).length === 2;
}

export function sameRef(a: MoRef | undefined, b: MoRef | undefined): boolean {
  return a !== undefined && b !== undefined && a.type === b.type && a.value === b.value;
}

/** `VirtualMachine:vm-42`, handy as a Map key. */
export function refKey(ref: MoRef): string {
  return `${ref.type}:${ref.value}`;
}

export interface AboutInfo {
  name: string;
  fullName: string;
  version: string;
  build: string;
  apiType: string;
  apiVersion: string;
  instanceUuid?: string;
  [field: string]: unknown;
}

/** The parts of ServiceContent this client uses; every other field is kept as decoded. */
export interface ServiceContent {
  rootFolder: MoRef;
  propertyCollector: MoRef;
  about: AboutInfo;
  viewManager?: MoRef;
  sessionManager?: MoRef;
  searchIndex?: MoRef;
  eventManager?: MoRef;
  taskManager?: MoRef;
  perfManager?: MoRef;
  alarmManager?: MoRef;
  customFieldsManager?: MoRef;
  [field: string]: unknown;
}

export interface UserSession {
  key: string;
  userName: string;
  fullName: string;
  loginTime: string;
  lastActiveTime: string;
  locale?: string;
  messageLocale?: string;
  ipAddress?: string;
  userAgent?: string;
  [field: string]: unknown;
}

/** A decoded vim25 data object: plain fields plus `_type` when the wire carried an xsi:type. */
export interface DataObject {
  _type?: string;
  [field: string]: unknown;
}
