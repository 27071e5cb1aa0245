/**
 * Memory and parse-cost bounds of POST /events: the hostile shapes (an array of hundreds of
 * thousands of empty objects, 10,000 levels of nesting) are refused with a coded 4xx before
 * JSON.parse, a flood of bodies beyond the byte budget gets 503 + Retry-After before its body is
 * read, and real VEBA events (a near-full batch of them included) pass.
 */
import { request } from "node:http";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Writable } from "node:stream";
import { addMicroService, createLogger, createMetrics } from "@iaas/runtime";
import { ErrorCatalogue, ServiceNames } from "@iaas/contracts";
import { buildBridge, checkJsonShape, Rejection, RejectCodes, RejectReasons } from "../src/mod.js";
import { loadFixtures } from "./fixtures.js";
import { baseConfig, batch, binary, envelopeFor, purgeEvents, send, sendEndless, startWorld, structured, uniqueSource, type Answer, type World } from "./helpers.js";

let w: World;
/** A bridge with the production body limit (1 MiB) and default JSON limits. */
let big: string;

beforeAll(async () => {
  w = await startWorld();
  big = (await w.extraBridge({ bodyLimit: 1024 * 1024 })).url;
});
afterAll(async () => {
  await w?.close();
});
beforeEach(async () => {
  await purgeEvents(w.jet);
});

const fixtures = loadFixtures();
const alarm = fixtures.find((f) => f.file === "AlarmStatusChangedEvent.datastore-usage-on-disk.data.json")!;

/** The shape of issue 12's attack: `data` an array of `n` empty objects in a structured event. */
function emptyObjects(n: number): string {
  const env = envelopeFor(alarm);
  return JSON.stringify({ ...env, data: { ...(env.data as object), Junk: "@" } }).replace('"@"', `[${"{},".repeat(n - 1)}{}]`);
}

function nested(levels: number): string {
  const env = envelopeFor(alarm);
  return JSON.stringify({ ...env, data: { ...(env.data as object), Junk: "@" } }).replace('"@"', `${"[".repeat(levels)}${"]".repeat(levels)}`);
}

describe("JSON shape before parsing", () => {
  it("an event whose data is 290,000 empty objects (870 kB) is refused 413 IAAS_TOO_LARGE, nothing stored", async () => {
    const body = emptyObjects(290_000);
    expect(body.length).toBeGreaterThan(860_000);
    const a = await send(big, { headers: { "content-type": "application/cloudevents+json" }, body });
    expect(a.status).toBe(413);
    expect(a.json.error).toMatchObject({ code: "IAAS_TOO_LARGE", reason: "too_many_values" });
    expect((await w.jet.jsm.streams.info("VSPHERE_EVENTS")).state.messages).toBe(0);
  });

  it("the same array in a batch and in binary mode is refused too", async () => {
    const a = await send(big, { headers: { "content-type": "application/cloudevents-batch+json" }, body: `[${emptyObjects(200_000)}]` });
    expect(a.json?.error?.reason).toBe("too_many_values");
    const b = binary(alarm, { data: { ...alarm.data, Junk: Array.from({ length: 200_000 }, () => ({})) } });
    const r = await send(big, b);
    expect([r.status, r.json?.error?.reason]).toEqual([413, "too_many_values"]);
  });

  it("JSON nested 10,000 levels is a 400 IAAS_BAD_REQUEST (too_deep), not a 500, and logs no stack", async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const bridge = buildBridge({ nc: w.nc, jet: w.jet, log: createLogger("veba-bridge-test", "info", sink), metrics: createMetrics("veba-bridge"), config: { ...baseConfig, bodyLimit: 1024 * 1024 } });
    const micro = await addMicroService(w.nc, ServiceNames.vebaBridge, "0.0.0-test", "veba-bridge under test");
    await bridge.start(micro);
    try {
      for (const body of [nested(10_000), `[${nested(10_000)}]`]) {
        const a = await send(`http://127.0.0.1:${bridge.port}`, { headers: { "content-type": body.startsWith("[") ? "application/cloudevents-batch+json" : "application/cloudevents+json" }, body });
        expect(a.status).toBe(400);
        expect(a.json.error).toMatchObject({ code: "IAAS_BAD_REQUEST", reason: "too_deep" });
      }
    } finally {
      await bridge.stop();
      await micro.stop();
    }
    expect(lines.join("")).not.toContain('"stack"');
    expect(lines.join("")).not.toContain("RangeError");
  });

  it("counts structure outside strings only: brackets and commas inside strings, escaped quotes included, are free", () => {
    const limits = { maxDepth: 3, maxValues: 5 };
    expect(() => checkJsonShape(Buffer.from(JSON.stringify({ a: `[[[[,,,,,,{{{{ \\" "[[[[` })), limits)).not.toThrow();
    expect(() => checkJsonShape(Buffer.from("[[[[1]]]]"), limits)).toThrow(/nested deeper than 3/);
    expect(() => checkJsonShape(Buffer.from("[1,2,3,4,5,6]"), limits)).toThrow(/more than 5/);
    expect(() => checkJsonShape(Buffer.from(JSON.stringify(["é[[[[", "\u2028{{{{"])), limits)).not.toThrow();
  });

  it("real VEBA events pass: every sample, and a batch of 250 (close to 1 MiB)", async () => {
    for (const f of fixtures) {
      const req = f.envelope ? structured({ ...f.envelope, source: uniqueSource() }) : binary(f);
      expect((await send(big, req)).status, f.file).toBe(200);
    }
    const largest = fixtures.find((f) => f.file === "VmReconfiguredEvent.nic-portgroup-change.data.json")!;
    const source = uniqueSource();
    const envelopes = Array.from({ length: 250 }, (_, i) => ({ ...envelopeFor(largest, source), data: { ...largest.data, Key: 1_000_000 + i } }));
    const req = batch(envelopes);
    expect(req.body.length).toBeGreaterThan(900_000);
    const a = await send(big, req);
    expect(a.status).toBe(200);
    expect(a.json.accepted).toBe(250);
  });
});

/** Starts a POST with Expect: 100-continue and resolves once the bridge said Continue (it holds the bytes then). */
function heldOpen(url: string, contentLength: number): Promise<{ finish(body: string): Promise<Answer>; answer: Promise<Answer> }> {
  return new Promise((resolve, reject) => {
    let settle!: (a: Answer) => void;
    const answer = new Promise<Answer>((r) => (settle = r));
    const req = request(`${url}/events`, { method: "POST", agent: false, headers: { "content-type": "application/cloudevents+json", "content-length": String(contentLength), expect: "100-continue" } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        settle({ status: res.statusCode ?? 0, headers: res.headers, text, json: JSON.parse(text) });
      });
    });
    req.on("error", reject);
    req.on("continue", () =>
      resolve({
        answer,
        finish(body) {
          req.end(body);
          return answer;
        },
      }),
    );
    req.flushHeaders();
  });
}

describe("the byte budget across requests", () => {
  it("a body that does not fit beside the ones held is answered 503 IAAS_UNAVAILABLE with Retry-After, unread; once they finish it fits", async () => {
    const url = (await w.extraBridge({ bodyLimit: 64 * 1024, inflightBytes: 100_000 })).url;
    const body = structured({ ...envelopeFor(alarm), data: { ...alarm.data, Pad: "x".repeat(59_000) } }).body;
    const first = await heldOpen(url, Buffer.byteLength(body));
    const refused = await send(url, { headers: { "content-type": "application/cloudevents+json" }, body });
    expect(refused.status).toBe(503);
    expect(refused.headers["retry-after"]).toBe("1");
    expect(refused.json.error).toMatchObject({ code: "IAAS_UNAVAILABLE", reason: "busy" });
    // Small events still fit beside the held one.
    expect((await send(url, binary(alarm))).status).toBe(200);
    expect((await first.finish(body)).status).toBe(200);
    expect((await send(url, { headers: { "content-type": "application/cloudevents+json" }, body: structured({ ...envelopeFor(alarm), id: randomUUID(), data: { ...alarm.data, Key: 5, Pad: "y".repeat(59_000) } }).body })).status).toBe(200);
  });

  it("a chunked body is counted as it arrives: past the budget it gets 503", async () => {
    const url = (await w.extraBridge({ bodyLimit: 64 * 1024, inflightBytes: 100_000 })).url;
    const first = await heldOpen(url, 60_000);
    const a = await sendEndless(url, { "content-type": "application/cloudevents+json" }, Buffer.alloc(4096, 0x20), 100);
    expect([a.status, a.json.error.reason]).toEqual([503, "busy"]);
    first.finish(" ".repeat(60_000)).catch(() => undefined);
    expect((await first.answer).status).toBe(400);
  });
});

describe("one vocabulary", () => {
  it("every refusal reason has its one catalogue code, and answers with that code's status", () => {
    for (const reason of RejectReasons) {
      const r = new Rejection(reason, "x");
      expect(ErrorCatalogue[r.code].status, reason).toBe(r.status);
      expect(r.toJSON().error).toEqual({ code: RejectCodes[reason], reason, message: "x" });
    }
    expect(new Set(RejectReasons.map((r) => new Rejection(r, "x").status))).toEqual(new Set([400, 401, 404, 405, 413, 415, 503]));
  });
});
