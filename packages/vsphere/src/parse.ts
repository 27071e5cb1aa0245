import { ProtocolError } from "./errors.js";
import { isMoRef, type MoRef, type ServiceContent, type UserSession } from "./types.js";

// Guards for decoded SOAP values: a response that does not have the shape we rely on is a
// ProtocolError naming the field, never a silent `undefined` further down.

export type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function asObj(v: unknown, what: string): Obj {
  if (!isObj(v)) throw new ProtocolError(`${what}: expected an object, got ${preview(v)}`);
  return v;
}

export function asString(v: unknown, what: string): string {
  if (typeof v !== "string") throw new ProtocolError(`${what}: expected a string, got ${preview(v)}`);
  return v;
}

export function optString(v: unknown, what: string): string | undefined {
  return v === undefined ? undefined : asString(v, what);
}

/** Numbers arrive coerced when the wire or schema typed them; numeric text is accepted too. */
export function asNumber(v: unknown, what: string): number {
  if (typeof v === "number") return v;
  if (typeof v === "string" && v.trim() !== "" && !Number.isNaN(Number(v))) return Number(v);
  throw new ProtocolError(`${what}: expected a number, got ${preview(v)}`);
}

export function optNumber(v: unknown, what: string): number | undefined {
  return v === undefined ? undefined : asNumber(v, what);
}

export function asBoolean(v: unknown, what: string): boolean {
  if (typeof v === "boolean") return v;
  if (v === "true") return true;
  if (v === "false") return false;
  throw new ProtocolError(`${what}: expected a boolean, got ${preview(v)}`);
}

export function optBoolean(v: unknown, what: string): boolean | undefined {
  return v === undefined ? undefined : asBoolean(v, what);
}

export function asMoRef(v: unknown, what: string): MoRef {
  if (!isMoRef(v)) throw new ProtocolError(`${what}: expected a managed object reference, got ${preview(v)}`);
  return { type: v.type, value: v.value };
}

export function optMoRef(v: unknown, what: string): MoRef | undefined {
  // An empty reference (vcsim leaves `<pool></pool>` after MarkAsVirtualMachine without a pool) is no reference.
  if (v === undefined || (isMoRef(v) && v.value === "")) return undefined;
  return asMoRef(v, what);
}

/** A repeated element decoded without a schema is a scalar when it occurred once. */
export function asArray(v: unknown): unknown[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

export function parseServiceContent(raw: unknown): ServiceContent {
  const o = asObj(raw, "ServiceContent");
  const about = asObj(o.about, "ServiceContent.about");
  asString(about.apiVersion, "ServiceContent.about.apiVersion");
  return {
    ...o,
    rootFolder: asMoRef(o.rootFolder, "ServiceContent.rootFolder"),
    propertyCollector: asMoRef(o.propertyCollector, "ServiceContent.propertyCollector"),
    about: about as ServiceContent["about"],
  } as ServiceContent;
}

/** A UserSession from Login or SessionManager.currentSession. */
export function parseUserSession(raw: unknown): UserSession {
  const o = asObj(raw, "UserSession");
  return {
    ...o,
    key: asString(o.key, "UserSession.key"),
    userName: asString(o.userName, "UserSession.userName"),
    fullName: asString(o.fullName ?? "", "UserSession.fullName"),
    loginTime: asString(o.loginTime, "UserSession.loginTime"),
    lastActiveTime: asString(o.lastActiveTime ?? o.loginTime, "UserSession.lastActiveTime"),
  };
}

function preview(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 120 ? `${s.slice(0, 117)}...` : s;
}
