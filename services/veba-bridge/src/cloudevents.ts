import type { IncomingHttpHeaders } from "node:http";
import { HTTP, type CloudEventV1 } from "cloudevents";
import {
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
    throw new Rejection(
      415,
      "unsupported_media_type",
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
          if (err instanceof Rejection) throw new Rejection(err.status as 400, err.reason, `event ${i + 1} of ${arr.length}: ${err.message}`);
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
  for (const [k, v] of Object.entries(headers)) if (k.startsWith("ce-") && typeof v === "string") ceHeaders[k] = v;
  return toVsphereEvent(toCloudEvent(ceHeaders, body), receivedAt);
}

function fromStructured(raw: unknown, text: string, receivedAt: Date): ParsedEvent {
  if (!isPlainObject(raw)) throw bad("invalid_cloudevent", "a structured CloudEvent must be a JSON object");
  checkSpecversion(raw.specversion, "specversion");
  for (const a of ["id", "source", "type"]) {
    const v = raw[a];
    if (typeof v !== "string" || !v.trim()) throw bad("missing_attribute", `${a} is missing or not a non-empty string`);
  }
  checkTime(raw.time, "time");
  return toVsphereEvent(toCloudEvent({ "content-type": MediaTypes.structured }, text), receivedAt);
}

// The SDK fills a missing id with a UUID and a bad time with "now", and validate() returns false
// (not an error) for other spec versions (STACK.md): so these are checked on the raw input.
function checkSpecversion(v: unknown, what: string): void {
  if (v === undefined) throw bad("bad_specversion", `${what} is missing: only CloudEvents 1.0 is accepted`);
  if (v !== "1.0") throw bad("bad_specversion", `${what} must be "1.0", not ${JSON.stringify(v)}`);
}

function checkTime(v: unknown, what: string): void {
  if (v === undefined) return;
  if (typeof v !== "string" || Number.isNaN(Date.parse(v))) throw bad("invalid_cloudevent", `${what} is not an RFC 3339 timestamp`);
}

function toCloudEvent(headers: Record<string, string>, body: string): CloudEventV1<unknown> {
  let ev: CloudEventV1<unknown> | CloudEventV1<unknown>[];
  try {
    // The body as a string: the SDK mishandles Buffers (STACK.md).
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
  if (!EventClassSchema.safeParse(cls).success) {
    throw bad("bad_event_class", `event class ${JSON.stringify(cls.slice(0, 100))} is not usable in a subject: dot-separated parts of A-Z a-z 0-9 _ - only`);
  }
  return cls;
}

function toVsphereEvent(ev: CloudEventV1<unknown>, receivedAt: Date): ParsedEvent {
  const eventClass = eventClassOf(ev.type, ev.subject);
  const data = ev.data;
  if (!isPlainObject(data)) throw bad("bad_data", "data must be a JSON object: the vSphere event");
  const key = readEventKey(data);
  if (key === undefined) throw bad("missing_key", "data.Key is missing or not a non-negative integer (every vCenter event has one)");
  const ceTime = ev.time ? new Date(ev.time) : undefined;
  const parsed = VsphereEventSchema.safeParse({
    id: ev.id,
    source: ev.source,
    eventClass,
    key,
    time: readEventCreatedTime(data) ?? (ceTime && !Number.isNaN(ceTime.getTime()) ? ceTime.toISOString() : receivedAt.toISOString()),
    receivedAt: receivedAt.toISOString(),
    via: "veba",
    ceType: ev.type,
    data,
  });
  if (!parsed.success) throw bad("invalid_cloudevent", formatIssues(parsed.error));
  return { message: parsed.data, subject: eventSubject(eventClass), msgId: eventMsgId(parsed.data.source, key) };
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
