import type { IncomingHttpHeaders } from "node:http";
import { CloudEvent, HTTP, type CloudEventV1 } from "cloudevents";
import {
  EventClassPattern,
  EventClassSchema,
  VsphereEventSchema,
  eventMsgId,
  eventSubject,
  formatIssues,
  readEventCreatedTime,
  readEventKey,
  type VsphereEvent,
} from "@iaas/contracts";
import { Rejection, bad } from "./reject.js";

/** CloudEvents HTTP binding content modes (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/http-protocol-binding.md). */
export type ContentMode = "binary" | "structured" | "batch";

export const MediaTypes = {
  json: "application/json",
  structured: "application/cloudevents+json",
  batch: "application/cloudevents-batch+json",
} as const;

/** One event ready to publish. */
export interface ParsedEvent {
  message: VsphereEvent;
  subject: string;
  msgId: string;
}

/** `type/subtype` of a Content-Type header, lower case, without parameters. */
export function mediaTypeOf(contentType: string | undefined): string | undefined {
  const mt = contentType?.split(";")[0]?.trim().toLowerCase();
  return mt ? mt : undefined;
}

function isJsonMediaType(mt: string): boolean {
  return mt === MediaTypes.json || mt === "text/json" || /^application\/[a-z0-9.!#$&^_-]+\+json$/.test(mt);
}

/**
 * The content mode from the headers alone, so a wrong Content-Type is refused before the body
 * is read. Binary mode is recognised by its `ce-*` headers and must carry JSON data.
 */
export function contentModeOf(headers: IncomingHttpHeaders): ContentMode {
  const mt = mediaTypeOf(single(headers, "content-type"));
  if (mt === MediaTypes.batch) return "batch";
  if (mt === MediaTypes.structured) return "structured";
  const hasCe = Object.keys(headers).some((h) => h.startsWith("ce-"));
  if (mt !== undefined && !isJsonMediaType(mt)) {
    throw new Rejection("unsupported_media_type",
      hasCe
        ? `binary-mode event data must be JSON (Content-Type ${MediaTypes.json}), not ${mt}`
        : `Content-Type ${mt} is not accepted: send ${MediaTypes.json} with ce-* headers, ${MediaTypes.structured} or ${MediaTypes.batch}`,
    );
  }
  if (!hasCe) {
    throw bad("not_cloudevent", `not a CloudEvent: binary mode needs the ce-specversion, ce-id, ce-source and ce-type headers; structured mode needs Content-Type ${MediaTypes.structured}`);
  }
  return "binary";
}

/** Parses a request body into vSphere events. Throws a Rejection (4xx) for anything wrong; a batch is refused whole. */
export function parseEvents(mode: ContentMode, headers: IncomingHttpHeaders, body: string, receivedAt: Date): ParsedEvent[] {
  switch (mode) {
    case "binary":
      return [fromBinary(headers, body, receivedAt)];
    case "structured":
      return [fromStructured(parseJson(body, "the body"), body, receivedAt)];
    case "batch": {
      const arr = parseJson(body, "the body");
      if (!Array.isArray(arr)) throw bad("invalid_cloudevent", "a batch must be a JSON array of CloudEvents");
      return arr.map((el, i) => {
        try {
          return fromStructured(el, JSON.stringify(el), receivedAt);
        } catch (err) {
          if (err instanceof Rejection) throw new Rejection(err.reason, `event ${i + 1} of ${arr.length}: ${err.message}`);
          throw err;
        }
      });
    }
  }
}

function fromBinary(headers: IncomingHttpHeaders, body: string, receivedAt: Date): ParsedEvent {
  checkSpecversion(single(headers, "ce-specversion"), "the ce-specversion header");
  for (const a of ["id", "source", "type"]) {
    if (!single(headers, `ce-${a}`)?.trim()) throw bad("missing_attribute", `the ce-${a} header is missing or empty`);
  }
  checkTime(single(headers, "ce-time"), "the ce-time header");
  const data = parseJson(body, "the body");
  if (!isPlainObject(data)) throw bad("bad_data", "the body must be a JSON object: the vSphere event");
  // The SDK only parses data whose Content-Type is exactly application/json, so hand it that.
  const ceHeaders: Record<string, string> = { "content-type": MediaTypes.json };
  for (const k in headers) {
    const v = headers[k];
    if (k.startsWith("ce-") && typeof v === "string") ceHeaders[k] = v;
  }
  return toVsphereEvent(binaryEvent(ceHeaders, body, data) ?? toCloudEvent(ceHeaders, body), receivedAt);
}

function fromStructured(raw: unknown, text: string, receivedAt: Date): ParsedEvent {
  if (!isPlainObject(raw)) throw bad("invalid_cloudevent", "a structured CloudEvent must be a JSON object");
  checkSpecversion(raw.specversion, "specversion");
  for (const a of ["id", "source", "type"]) {
    const v = raw[a];
    if (typeof v !== "string" || !v.trim()) throw bad("missing_attribute", `${a} is missing or not a non-empty string`);
  }
  checkTime(raw.time, "time");
  return toVsphereEvent(structuredEvent(raw, text) ?? toCloudEvent({ "content-type": MediaTypes.structured }, text), receivedAt);
}

// The SDK (cloudevents 10) fills a missing id with a UUID and a bad time with "now", and validate()
// returns false (not an error) for other spec versions: so these are checked on the raw input.
function checkSpecversion(v: unknown, what: string): void {
  if (v === undefined) throw bad("bad_specversion", `${what} is missing: only CloudEvents 1.0 is accepted`);
  if (v !== "1.0") throw bad("bad_specversion", `${what} must be "1.0", not ${JSON.stringify(v)}`);
}

function checkTime(v: unknown, what: string): void {
  if (v === undefined) return;
  if (typeof v !== "string" || Number.isNaN(Date.parse(v))) throw bad("invalid_cloudevent", `${what} is not an RFC 3339 timestamp`);
}

/*
 * The SDK's HTTP.toEvent parses the body a second time and builds several errors it throws away
 * on every call: most of the bridge's parsing time. binaryEvent and structuredEvent build the same
 * attributes as the SDK's parseBinary / parseStructured (cloudevents 10.0.0) from what is already
 * parsed, for the requests VEBA sends, and leave validation to the SDK's own CloudEvent and
 * validate(). Whatever they do not cover, or what does not validate, returns undefined and goes
 * the SDK's whole way (toCloudEvent), so refusals and their messages are the SDK's as before.
 */

/** Binary-mode headers the SDK reads as attributes; another `ce-<name>` is an extension. */
const BinaryAttributes = new Set(["specversion", "id", "source", "type", "time", "subject"]);
/** Structured-mode members the SDK reads as attributes (v1structuredParsers); the rest are extensions. */
const StructuredAttributes = ["type", "specversion", "source", "id", "time", "dataschema", "datacontenttype", "subject", "data", "data_base64"] as const;
const StructuredAttributeSet = new Set<string>(StructuredAttributes);
/** Names the SDK's CloudEvent gives a meaning of its own: as binary-mode extensions they take the SDK's path. */
const ReservedNames = new Set(["id", "time", "type", "source", "specversion", "datacontenttype", "datacontentencoding", "dataschema", "subject", "data", "data_base64", "schemaurl"]);
const ExtensionName = /^[a-z0-9]+$/;

/** With CE_USE_BIG_INT=true the SDK parses JSON with json-bigint: only its own path is the same then. */
function sdkParsesPlainJson(body: string): boolean {
  // The SDK quotes a body that does not start with [, { or " before parsing it: only `{` is the same as JSON.parse.
  return body.charCodeAt(0) === 0x7b && process.env.CE_USE_BIG_INT !== "true";
}

/** The SDK's DateParser: a time it cannot read becomes "now" (the bridge refuses those earlier). */
function sdkTime(v: unknown): string {
  const ms = Date.parse(v as string);
  return (Number.isNaN(ms) ? new Date() : new Date(ms)).toISOString();
}

function validCloudEvent(attributes: Record<string, unknown>): CloudEventV1<unknown> | undefined {
  try {
    const ev = new CloudEvent<unknown>(attributes as Partial<CloudEventV1<unknown>>, false);
    return ev.validate() ? ev : undefined;
  } catch {
    return undefined;
  }
}

/** HTTP.toEvent of a binary-mode request whose body parsed to `data`, or undefined for the SDK's path. */
export function binaryEvent(ceHeaders: Record<string, string>, body: string, data: Record<string, unknown>): CloudEventV1<unknown> | undefined {
  if (!sdkParsesPlainJson(body)) return undefined;
  const attributes: Record<string, unknown> = { datacontenttype: MediaTypes.json };
  for (const h in ceHeaders) {
    if (h === "content-type") continue;
    const name = h.slice(3);
    const v = ceHeaders[h]!;
    // The SDK takes an empty attribute header as an extension of that name: its path.
    if (v === "") return undefined;
    if (BinaryAttributes.has(name)) attributes[name] = name === "time" ? sdkTime(v) : v;
    else if (ExtensionName.test(name) && !ReservedNames.has(name)) attributes[name] = v;
    else return undefined;
  }
  attributes.data = data;
  return validCloudEvent(attributes);
}

/** HTTP.toEvent of a structured-mode body `text` that parsed to `raw`, or undefined for the SDK's path. */
export function structuredEvent(raw: Record<string, unknown>, text: string): CloudEventV1<unknown> | undefined {
  if (!sdkParsesPlainJson(text) || raw.data_base64 || raw.datacontentencoding === "base64") return undefined;
  const attributes: Record<string, unknown> = {};
  for (const name of StructuredAttributes) {
    const v = raw[name];
    // As the SDK: a falsy attribute is left out.
    if (v) attributes[name] = name === "time" ? sdkTime(v) : v;
  }
  for (const name in raw) if (!StructuredAttributeSet.has(name)) attributes[name] = raw[name];
  return validCloudEvent(attributes);
}

function toCloudEvent(headers: Record<string, string>, body: string): CloudEventV1<unknown> {
  let ev: CloudEventV1<unknown> | CloudEventV1<unknown>[];
  try {
    // The body as a string: given a Buffer, the SDK (cloudevents 10) keeps the bytes as a binary-mode
    // event's data and reads a structured one's bytes as members ("0", "1", ...), parsing no JSON.
    ev = HTTP.toEvent<unknown>({ headers, body });
  } catch (err) {
    throw bad("invalid_cloudevent", `not a valid CloudEvent: ${describe(err)}`);
  }
  if (Array.isArray(ev)) throw bad("invalid_cloudevent", "expected one CloudEvent, got a batch");
  let valid = false;
  try {
    valid = (ev as unknown as { validate(): boolean }).validate();
  } catch (err) {
    throw bad("invalid_cloudevent", `not a valid CloudEvent: ${describe(err)}`);
  }
  if (!valid) throw bad("invalid_cloudevent", "not a valid CloudEvents 1.0 event");
  return ev;
}

/**
 * The event class from the two VEBA type families:
 * - VMware Event Router: `com.vmware.event.router/event` (and `/eventex`, `/extendedevent`) with the
 *   class, or the EventEx type id, in `subject`;
 * - Tanzu Sources VSphereSource: `com.vmware.vsphere.<Class>.v0`.
 */
export function eventClassOf(type: string, subject: string | undefined): string {
  let cls: string | undefined;
  if (/^com\.vmware\.event\.router\/(event|eventex|extendedevent)$/.test(type)) {
    if (!subject) throw bad("bad_event_class", `type ${type} needs the event class in subject, which is missing`);
    cls = subject;
  } else {
    const m = /^com\.vmware\.vsphere\.(.*)\.v[0-9]+$/.exec(type);
    if (!m) throw bad("unknown_type", `type ${JSON.stringify(type)} is not a vSphere event type (com.vmware.event.router/event or com.vmware.vsphere.<Class>.v0)`);
    cls = m[1];
    if (!cls) throw bad("bad_event_class", `type ${type} names no event class`);
  }
  if (subjectOf(cls) === undefined) {
    throw bad("bad_event_class", `event class ${JSON.stringify(cls.slice(0, 100))} is not usable in a subject: dot-separated parts of A-Z a-z 0-9 _ - only`);
  }
  return cls;
}

/**
 * The subject of a valid event class (EventClassSchema), undefined for an invalid one. Classes are
 * few and every event of one class needs the same subject: remembered, up to a bound, so a
 * sender cannot grow the cache without limit.
 */
const subjects = new Map<string, string>();
function subjectOf(eventClass: string): string | undefined {
  let subject = subjects.get(eventClass);
  if (subject !== undefined) return subject;
  if (!EventClassSchema.safeParse(eventClass).success) return undefined;
  subject = eventSubject(eventClass);
  if (subjects.size >= 1024) subjects.clear();
  subjects.set(eventClass, subject);
  return subject;
}

function toVsphereEvent(ev: CloudEventV1<unknown>, receivedAt: Date): ParsedEvent {
  const eventClass = eventClassOf(ev.type, ev.subject);
  const data = ev.data;
  if (!isPlainObject(data)) throw bad("bad_data", "data must be a JSON object: the vSphere event");
  const key = readEventKey(data);
  if (key === undefined) throw bad("missing_key", "data.Key is missing or not a non-negative integer (every vCenter event has one)");
  const ceTime = ev.time ? new Date(ev.time) : undefined;
  const message: VsphereEvent = {
    id: ev.id,
    source: ev.source,
    eventClass,
    key,
    time: readEventCreatedTime(data) ?? (ceTime && !Number.isNaN(ceTime.getTime()) ? ceTime.toISOString() : receivedAt.toISOString()),
    receivedAt: receivedAt.toISOString(),
    via: "veba",
    ceType: ev.type,
    data,
  };
  const checked = vouchedFor(message) ? message : parseVsphereEvent(message);
  return { message: checked, subject: subjectOf(eventClass)!, msgId: eventMsgId(checked) };
}

/**
 * True when VsphereEventSchema accepts `m` and gives it back as it is (the same members, values and
 * JSON). A hand-written check of the schema's rules, sparing a zod parse per event; false sends the
 * message through the schema, which refuses it with its own message (or, for data with its own
 * `__proto__` member, drops that member, as it always has). It may say false where the schema
 * would accept, never the other way round: test/fastpath.test.ts holds it to the schema.
 */
export function vouchedFor(m: VsphereEvent): boolean {
  return (
    Object.keys(m).length === (m.ceType === undefined ? 8 : 9) &&
    isLength(m.id, 1, 256) &&
    isLength(m.source, 1, 1024) &&
    isLength(m.eventClass, 1, 255) &&
    EventClassPattern.test(m.eventClass) &&
    Number.isSafeInteger(m.key) &&
    m.key >= 0 &&
    isIsoTime(m.time) &&
    isIsoTime(m.receivedAt) &&
    (m.via === "veba" || m.via === "poller") &&
    (m.ceType === undefined || isLength(m.ceType, 1, 512)) &&
    isPlainObject(m.data) &&
    !Object.hasOwn(m.data, "__proto__")
  );
}

function isLength(v: unknown, min: number, max: number): v is string {
  return typeof v === "string" && v.length >= min && v.length <= max;
}

/** A time as toISOString writes it for the years 0000-9999, and a real one (not February 30th). */
const IsoTime = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
function isIsoTime(v: unknown): boolean {
  if (typeof v !== "string" || !IsoTime.test(v)) return false;
  const ms = Date.parse(v);
  return !Number.isNaN(ms) && new Date(ms).toISOString() === v;
}

function parseVsphereEvent(candidate: VsphereEvent): VsphereEvent {
  const parsed = VsphereEventSchema.safeParse(candidate);
  if (!parsed.success) throw bad("invalid_cloudevent", formatIssues(parsed.error));
  return parsed.data;
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw bad("bad_json", `${what} is not valid JSON`);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}

function single(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  if (Array.isArray(v)) throw bad("invalid_cloudevent", `the ${name} header is given more than once`);
  return v;
}

/** The SDK's ValidationError carries ajv errors; one line of them. */
function describe(err: unknown): string {
  const errors = (err as { errors?: unknown[] })?.errors;
  if (Array.isArray(errors) && errors.length) {
    return errors
      .map((e) => {
        if (typeof e === "object" && e !== null && "message" in e) {
          const path = (e as { instancePath?: string }).instancePath;
          return `${path ? `${path.replace(/^\//, "")}: ` : ""}${String((e as { message: unknown }).message)}`;
        }
        return String(e);
      })
      .join("; ");
  }
  return err instanceof Error ? err.message.split("\n")[0]! : String(err);
}
