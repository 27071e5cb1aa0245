/**
 * The bridge's shortcuts past the CloudEvents SDK and zod (src/cloudevents.ts) must decide as the
 * SDK and VsphereEventSchema do: these tests hold them to the real thing on the fixtures and on
 * variations of them.
 */
import { describe, expect, it } from "vitest";
import { HTTP, type CloudEventV1 } from "cloudevents";
import { VsphereEventSchema, type VsphereEvent } from "@iaas/contracts";
import { binaryEvent, structuredEvent, vouchedFor } from "../src/cloudevents.js";
import { loadFixtures } from "./fixtures.js";

const fixtures = loadFixtures();
const envelopes = fixtures.flatMap((f) => (f.envelope ? [f.envelope] : []));
const env = envelopes[0]!;

/** What the SDK makes of a request, or undefined when it throws or validate() refuses. */
function sdk(headers: Record<string, string>, body: string): CloudEventV1<unknown> | undefined {
  try {
    const ev = HTTP.toEvent<unknown>({ headers, body });
    if (Array.isArray(ev)) return undefined;
    return (ev as unknown as { validate(): boolean }).validate() ? ev : undefined;
  } catch {
    return undefined;
  }
}

/** The attributes as plain JSON, less those the SDK fills in with "now" or a random UUID (the bridge refuses a missing id or time). */
function attributes(ev: CloudEventV1<unknown>, sent: { id?: unknown; time?: unknown }): unknown {
  const { time, id, ...rest } = JSON.parse(JSON.stringify(ev)) as Record<string, unknown>;
  return { ...rest, ...(sent.id ? { id } : {}), ...(sent.time && !Number.isNaN(Date.parse(sent.time as string)) ? { time } : {}) };
}

/*
 * When a shortcut declines (undefined), the SDK decides: that is right only when the SDK refuses
 * the request too, or when the request is one the shortcut is documented not to cover. These
 * restate those cases from the outside, so a shortcut that declined everything would fail here.
 */
const SdkAttributes = new Set(["specversion", "id", "source", "type", "time", "subject"]);
const SdkReserved = new Set(["id", "time", "type", "source", "specversion", "datacontenttype", "datacontentencoding", "dataschema", "subject", "data", "data_base64", "schemaurl"]);
function binaryNotCovered(headers: Record<string, string>, body: string): boolean {
  if (!body.startsWith("{")) return true;
  return Object.entries(headers).some(([h, v]) => h.startsWith("ce-") && (v === "" || (!SdkAttributes.has(h.slice(3)) && (!/^[a-z0-9]+$/.test(h.slice(3)) || SdkReserved.has(h.slice(3))))));
}
function structuredNotCovered(raw: Record<string, unknown>, text: string): boolean {
  return !text.startsWith("{") || Boolean(raw.data_base64) || raw.datacontentencoding === "base64";
}

const odd = ["", " ", "x", "not a uri", "yesterday", "2021-02-30T00:00:00Z", "+275760-09-13T00:00:00Z", "https://vc.example/sdk", "x".repeat(300)];

describe("binary mode without the SDK's parsing", () => {
  const base = (over: Record<string, string> = {}): Record<string, string> => ({
    "content-type": "application/json",
    "ce-specversion": "1.0",
    "ce-id": "id-1",
    "ce-source": env.source,
    "ce-type": env.type,
    "ce-subject": env.subject!,
    "ce-time": env.time!,
    ...over,
  });
  const cases: [string, Record<string, string>, string][] = [];
  for (const f of fixtures) cases.push([f.file, base(), JSON.stringify(f.data)]);
  const names = ["ce-id", "ce-source", "ce-subject", "ce-time", "ce-dataschema", "ce-datacontenttype", "ce-data", "ce-foo", "ce-foo-bar", "ce-"];
  for (const h of names) for (const v of odd) cases.push([`${h}: ${JSON.stringify(v.slice(0, 20))}`, base({ [h]: v }), JSON.stringify(env.data)]);
  cases.push(["no ce-time", Object.fromEntries(Object.entries(base()).filter(([k]) => k !== "ce-time")), JSON.stringify(env.data)]);
  cases.push(["a body with leading white space", base(), ` ${JSON.stringify(env.data)}`]);

  it.each(cases)("as HTTP.toEvent: %s", (_name, headers, body) => {
    const data = JSON.parse(body) as Record<string, unknown>;
    const fast = binaryEvent(headers, body, data);
    const slow = sdk(headers, body);
    // Undefined means "ask the SDK": never a different answer.
    if (fast !== undefined) {
      expect(slow).toBeDefined();
      const sent = { id: headers["ce-id"], time: headers["ce-time"] };
      expect(attributes(fast, sent)).toEqual(attributes(slow!, sent));
    } else {
      expect(slow === undefined || binaryNotCovered(headers, body), "declined a request the SDK takes and the shortcut covers").toBe(true);
    }
  });

  it("takes the short way for what VEBA sends", () => {
    const headers = base();
    const body = JSON.stringify(env.data);
    expect(binaryEvent(headers, body, env.data)).toBeDefined();
  });
});

describe("structured mode without the SDK's parsing", () => {
  const cases: [string, Record<string, unknown>][] = envelopes.map((e) => [e.type, e]);
  const keys = ["id", "source", "type", "subject", "time", "dataschema", "datacontenttype", "data_base64", "datacontentencoding", "schemaurl", "foo", "Foo", "foo_bar", "__proto__"];
  for (const k of keys) for (const v of [...odd, 5, null, true, { a: 1 }]) cases.push([`${k}: ${JSON.stringify(v)?.slice(0, 20)}`, { ...env, [k]: v }]);

  it.each(cases)("as HTTP.toEvent: %s", (_name, raw) => {
    const text = JSON.stringify(raw);
    const fast = structuredEvent(JSON.parse(text) as Record<string, unknown>, text);
    const slow = sdk({ "content-type": "application/cloudevents+json" }, text);
    if (fast !== undefined) {
      expect(slow).toBeDefined();
      expect(attributes(fast, raw)).toEqual(attributes(slow!, raw));
    } else {
      expect(slow === undefined || structuredNotCovered(raw, text), "declined an envelope the SDK takes and the shortcut covers").toBe(true);
    }
  });

  it("takes the short way for VEBA's envelopes", () => {
    for (const e of envelopes) expect(structuredEvent(e, JSON.stringify(e))).toBeDefined();
  });
});

describe("vouchedFor: only what VsphereEventSchema accepts unchanged", () => {
  const good: VsphereEvent = {
    id: "08179137-b8e0-4973-b05f-8f212bf5003b",
    source: "https://vcenter.example/sdk",
    eventClass: "VmPoweredOffEvent",
    key: 2817273,
    time: "2021-05-17T22:01:36.496Z",
    receivedAt: "2026-11-25T12:00:00.000Z",
    via: "veba",
    ceType: "com.vmware.event.router/event",
    data: { Key: 2817273 },
  };
  const variations: Record<string, unknown[]> = {
    id: ["", "x".repeat(256), "x".repeat(257), 5],
    source: ["", "x".repeat(1024), "x".repeat(1025)],
    eventClass: ["", "A.B", "A..B", "Vm>", "x".repeat(128), "x".repeat(129), `${"x".repeat(128)}.${"y".repeat(127)}`, `${"x".repeat(128)}.${"y".repeat(128)}`],
    key: [0, -0, -1, 1.5, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 1, "1"],
    time: ["2021-05-17T22:01:36Z", "2021-02-30T00:00:00.000Z", "2024-02-29T00:00:00.000Z", "0000-01-01T00:00:00.000Z", "+275760-09-13T00:00:00.000Z", "2021-05-17T24:00:00.000Z"],
    receivedAt: ["", "2021-13-01T00:00:00.000Z"],
    via: ["poller", "other"],
    ceType: [undefined, "", "x".repeat(512), "x".repeat(513)],
    data: [{}, [], null, JSON.parse('{"__proto__": {"a": 1}, "Key": 1}'), new Date(0), Object.create(null)],
    extra: ["member"],
  };
  const candidates: [string, VsphereEvent][] = [["as built", good]];
  for (const [k, vs] of Object.entries(variations)) for (const v of vs) candidates.push([`${k}: ${String(JSON.stringify(v)).slice(0, 30)}`, { ...good, [k]: v } as VsphereEvent]);
  const { ceType: _c, ...noCeType } = good;
  candidates.push(["without ceType", noCeType]);

  it.each(candidates)("%s", (_name, m) => {
    if (vouchedFor(m)) {
      const parsed = VsphereEventSchema.safeParse(m);
      expect(parsed.success).toBe(true);
      expect(JSON.stringify(parsed.data)).toBe(JSON.stringify(m));
    }
  });

  it("vouches for what the bridge builds from VEBA's events", () => {
    expect(vouchedFor(good)).toBe(true);
    expect(vouchedFor(noCeType as VsphereEvent)).toBe(true);
  });
});
