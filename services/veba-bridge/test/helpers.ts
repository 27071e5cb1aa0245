import { request, type IncomingHttpHeaders } from "node:http";
import { randomUUID } from "node:crypto";
import { Headers, ServiceNames, Streams, VsphereEventSchema, type VsphereEvent } from "@iaas/contracts";
import {
  addMicroService,
  BaseEnvSchema,
  connectNats,
  createLogger,
  createMetrics,
  ensureStreams,
  jetstreamFor,
  loadConfig,
  type Jet,
  type Metrics,
  type NatsConnection,
} from "@iaas/runtime";
import { startNatsServer, type NatsServer } from "@iaas/testkit";
import { BRIDGE_DESCRIPTION, VERSION, buildBridge, type Bridge } from "../src/build.js";
import type { BridgeConfig } from "../src/mod.js";
import { tanzuType, type Envelope, type Fixture } from "./fixtures.js";

export const log = createLogger("veba-bridge-test", process.env.TEST_LOG_LEVEL ?? "silent");

export interface World {
  server: NatsServer;
  nc: NatsConnection;
  jet: Jet;
  metrics: Metrics;
  bridge: Bridge;
  url: string;
  /** Another bridge on the same NATS with other settings (auth, limits); stopped by `close`. */
  extraBridge(config: Partial<BridgeConfig>): Promise<{ bridge: Bridge; url: string }>;
  close(): Promise<void>;
}

export const baseConfig: BridgeConfig = { host: "127.0.0.1", port: 0, bodyLimit: 64 * 1024, publishTimeoutMs: 1_500, auth: {} };

/** A private nats-server with the events stream, and a started bridge on a free port. */
export async function startWorld(config: Partial<BridgeConfig> = {}): Promise<World> {
  const server = await startNatsServer();
  const nc = await connectNats(loadConfig(BaseEnvSchema, { NATS_URL: server.url }), "veba-bridge-test", log);
  const jet = await jetstreamFor(nc);
  await ensureStreams(jet.jsm, ["events"], log);
  const metrics = createMetrics("veba-bridge");
  const bridges: { stop(): Promise<void> }[] = [];
  const make = async (c: Partial<BridgeConfig>) => {
    const bridge = buildBridge({ nc, jet, log, metrics, config: { ...baseConfig, ...c } });
    // As main starts it: on a micro service registered for the process, stopped after it.
    const micro = await addMicroService(nc, ServiceNames.vebaBridge, VERSION, BRIDGE_DESCRIPTION);
    await bridge.start(micro);
    bridges.push({
      async stop() {
        await bridge.stop();
        await micro.stop();
      },
    });
    return { bridge, url: `http://127.0.0.1:${bridge.port}` };
  };
  const main = await make(config);
  return {
    server,
    nc,
    jet,
    metrics,
    bridge: main.bridge,
    url: main.url,
    extraBridge: make,
    close: async () => {
      for (const b of bridges) await b.stop();
      await nc.close();
      await server.dispose();
    },
  };
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

/** A real HTTP request (node:http, no client-side magic). */
export function send(url: string, opts: { path?: string; method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${opts.path ?? "/events"}`, { method: opts.method ?? "POST", headers: opts.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on("error", reject);
    req.end(opts.body);
  });
}

/**
 * Streams a chunked body that never ends and resolves with the answer: only a server that
 * enforces the limit while reading can answer at all.
 */
export function sendEndless(url: string, headers: Record<string, string>, chunk: Buffer, maxChunks: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = request(`${url}/events`, { method: "POST", headers: { ...headers, "transfer-encoding": "chunked" }, agent: false }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        req.destroy();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: JSON.parse(text) });
      });
    });
    // Once the server has answered and closed, writes fail: that is expected here.
    req.on("error", (err) => {
      if (!answered) reject(err);
    });
    let n = 0;
    const pump = () => {
      while (n < maxChunks && !answered) {
        n += 1;
        if (!req.write(chunk)) {
          req.once("drain", pump);
          return;
        }
      }
    };
    pump();
  });
}

let sourceN = 0;
/** A vCenter source no other test uses, so Nats-Msg-Ids never collide across tests. */
export function uniqueSource(): string {
  sourceN += 1;
  return `https://vc-${process.pid}-${sourceN}.test/sdk`;
}

/** Binary mode, as VEBA's broker sends by default: the data as the body, attributes as ce-* headers. */
export function binary(f: Fixture, attrs: { type?: string; subject?: string; id?: string; source?: string; data?: unknown } = {}): { headers: Record<string, string>; body: string } {
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "ce-specversion": "1.0",
    "ce-id": attrs.id ?? randomUUID(),
    "ce-source": attrs.source ?? uniqueSource(),
    "ce-type": attrs.type ?? tanzuType(f.eventClass),
    "ce-time": new Date().toISOString(),
  };
  if (attrs.subject) headers["ce-subject"] = attrs.subject;
  return { headers, body: JSON.stringify(attrs.data ?? f.data) };
}

/** A structured envelope for a data-only fixture, in the Tanzu (VSphereSource) format. */
export function envelopeFor(f: Fixture, source = uniqueSource()): Envelope {
  return { specversion: "1.0", id: randomUUID(), source, type: tanzuType(f.eventClass), datacontenttype: "application/json", time: new Date().toISOString(), data: f.data };
}

export function structured(envelope: unknown): { headers: Record<string, string>; body: string } {
  return { headers: { "content-type": "application/cloudevents+json; charset=utf-8" }, body: JSON.stringify(envelope) };
}

export function batch(envelopes: unknown[]): { headers: Record<string, string>; body: string } {
  return { headers: { "content-type": "application/cloudevents-batch+json" }, body: JSON.stringify(envelopes) };
}

export interface Stored {
  seq: number;
  subject: string;
  msgId: string | undefined;
  event: VsphereEvent;
}

/** Every message in VSPHERE_EVENTS, each parsed with the contract's schema. */
export async function storedEvents(jet: Jet): Promise<Stored[]> {
  const info = await jet.jsm.streams.info(Streams.events.name);
  const out: Stored[] = [];
  if (info.state.messages === 0) return out;
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jet.jsm.streams.getMessage(Streams.events.name, { seq });
    if (!m) continue;
    out.push({ seq: m.seq, subject: m.subject, msgId: m.header?.get(Headers.msgId) || undefined, event: VsphereEventSchema.parse(m.json()) });
  }
  return out;
}

export async function purgeEvents(jet: Jet): Promise<void> {
  await jet.jsm.streams.purge(Streams.events.name);
}
