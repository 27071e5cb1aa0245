import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { Headers, ServiceNames, Streams, oneLine } from "@iaas/contracts";
import { ByteBudget, SpanKind, encodeJson, inHop, inProduceSpan, isNatsConnected, makeHeaders, startHop, tracingEnabled, type Jet, type Logger, type Metrics, type NatsConnection, type Service } from "@iaas/runtime";
import { authRequired, challenges, isAuthorized } from "./auth.js";
import { contentModeOf, parseEvents, type ContentMode } from "./cloudevents.js";
import { BridgeDefaults, type BridgeConfig } from "./config.js";
import { checkJsonShape } from "./limits.js";
import { bridgeMetrics } from "./metrics.js";
import { Rejection } from "./reject.js";

export const VERSION = "0.1.0";

export interface BridgeDeps {
  nc: NatsConnection;
  jet: Jet;
  log: Logger;
  metrics: Metrics;
  config: BridgeConfig;
}

export interface Bridge {
  /**
   * Listens for VEBA. `micro` is the micro service its process registered (the bridge adds no
   * endpoint to it); whoever registered it stops it.
   */
  start(micro: Service): Promise<void>;
  /** Stops accepting and lets in-flight requests finish. */
  stop(): Promise<void>;
  /** The HTTP port, once started (useful with port 0). */
  readonly port: number;
  readonly listening: boolean;
}

/** What the bridge answers once JetStream has stored every event of the request. */
export interface AcceptedAnswer {
  accepted: number;
  duplicates: number;
  events: { id: string; eventClass: string; key: number; subject: string; seq: number; duplicate: boolean }[];
}

export const BRIDGE_DESCRIPTION = "VEBA CloudEvents (HTTP) to JetStream vsphere.event.<EventClass>";

const dec = new TextDecoder("utf-8", { fatal: true });

/**
 * The VEBA-to-NATS bridge, not started. `POST /events` takes CloudEvents (binary, structured or
 * batch mode), publishes each to `vsphere.event.<EventClass>` with Nats-Msg-Id = eventMsgId(event),
 * and answers 2xx only once JetStream has acked all of them; 503 otherwise, so VEBA retries and
 * the stream drops whatever had already been stored. Bad requests get a 4xx and are never retried.
 */
export function buildBridge(deps: BridgeDeps): Bridge {
  const { nc, jet, log, config } = deps;
  const m = bridgeMetrics(deps.metrics);
  let server: Server | undefined;
  let port = 0;
  const budget = new ByteBudget(config.inflightBytes ?? BridgeDefaults.inflightBytes);
  const jsonLimits = { ...BridgeDefaults.json, ...config.json };

  async function handle(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): Promise<void> {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz" || path === "/readyz") return health(req, res, path);
    if (path !== "/events") throw new Rejection("not_found", `no such endpoint ${path ?? ""}: VEBA posts to /events`);
    if (req.method !== "POST") throw new Rejection("method_not_allowed", "/events takes POST");
    if (!isAuthorized(req.headers.authorization, config.auth)) {
      throw new Rejection("unauthorized", req.headers.authorization ? "wrong credentials" : "credentials required (basic or bearer, as configured on the bridge)");
    }
    if (!tracingEnabled()) return receive(req, res, expectsContinue);
    // One server span per POST (under the sender's traceparent header, if any); each event's publish is its child.
    const tp = req.headers.traceparent;
    const hop = startHop(ServiceNames.vebaBridge, "POST /events", SpanKind.SERVER, { "http.request.method": "POST", "url.path": "/events" }, typeof tp === "string" ? tp : "");
    await inHop(hop, async () => {
      await receive(req, res, expectsContinue);
      hop.span.setAttribute("http.response.status_code", res.statusCode);
    });
  }

  async function receive(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): Promise<void> {
    const mode = contentModeOf(req.headers);
    const declared = Number(req.headers["content-length"]);
    const sized = Number.isFinite(declared) && req.headers["content-length"] !== undefined;
    if (sized && declared > config.bodyLimit) throw tooLarge(config.bodyLimit);
    // A declared body is reserved whole before it is read (and before 100-continue); a chunked one as it arrives.
    let held = 0;
    const hold = (n: number) => {
      if (!budget.take(n)) throw busy();
      held += n;
    };
    try {
      if (sized) hold(declared);
      if (expectsContinue) res.writeContinue();
      const receivedAt = new Date();
      // The parsed request lives only inside prepare: what waits for JetStream is the encoded payloads.
      await publishAll(res, mode, prepare(mode, req.headers, await readBody(req, config.bodyLimit, sized ? undefined : hold), receivedAt));
    } finally {
      budget.give(held);
    }
  }

  interface Prepared {
    id: string;
    eventClass: string;
    key: number;
    subject: string;
    msgId: string;
    source: string;
    payload: Uint8Array;
  }

  /** Body to payloads, synchronously: the parse tree is garbage before the first await. */
  function prepare(mode: ContentMode, headers: IncomingMessage["headers"], body: Buffer, receivedAt: Date): Prepared[] {
    checkJsonShape(body, jsonLimits);
    let text: string;
    try {
      text = dec.decode(body);
    } catch {
      throw new Rejection("bad_json", "the body is not UTF-8");
    }
    const events = parseEvents(mode, headers, text, receivedAt);
    const max = nc.info?.max_payload;
    return events.map((e) => {
      const payload = encodeJson(e.message);
      if (max && payload.length > max) {
        // Retrying cannot help: NATS refuses messages over max_payload.
        throw new Rejection("too_large", `event ${e.message.id} is ${payload.length} bytes as a NATS message, over the server's max_payload of ${max}`);
      }
      return { id: e.message.id, eventClass: e.message.eventClass, key: e.message.key, subject: e.subject, msgId: e.msgId, source: e.message.source, payload };
    });
  }

  async function publishAll(res: ServerResponse, mode: ContentMode, events: Prepared[]): Promise<void> {
    // A child logger per request costs more than the rest of the request's logging: made only
    // when something is logged at debug level, or when the request fails.
    const requestLog = () => log.child({ requestId: randomUUID(), mode, events: events.length });
    const rlog = log.isLevelEnabled("debug") ? requestLog() : undefined;
    await nextTurn();
    const results = await Promise.all(events.map((e) => publish(e, rlog)));
    const failed = results.filter((r) => !r.ok);
    if (failed.length) {
      const first = failed[0]!;
      (rlog ?? requestLog()).error({ err: first.err, failed: failed.length }, `JetStream did not store ${failed.length} of ${events.length} events; answering 503 so the sender retries`);
      sendJson(res, 503, { error: { code: "IAAS_UNAVAILABLE", message: oneLine(`JetStream did not store ${failed.length} of ${events.length} events (${errText(first.err)}); retry later`) } }, { "retry-after": "5" });
      return;
    }
    const answer: AcceptedAnswer = {
      accepted: results.filter((r) => r.ok && !r.duplicate).length,
      duplicates: results.filter((r) => r.ok && r.duplicate).length,
      events: events.map((e, i) => ({
        id: e.id,
        eventClass: e.eventClass,
        key: e.key,
        subject: e.subject,
        seq: results[i]!.seq ?? 0,
        duplicate: results[i]!.duplicate ?? false,
      })),
    };
    rlog?.debug({ accepted: answer.accepted, duplicates: answer.duplicates }, "events stored");
    sendJson(res, 200, answer);
  }

  type PublishResult = { ok: true; seq: number; duplicate: boolean; err?: undefined } | { ok: false; err: unknown; seq?: undefined; duplicate?: undefined };

  /*
   * The NATS client writes what was published at the next microtask checkpoint: with requests
   * finishing one by one, that is a socket write per event, which cost more CPU than anything
   * else in the bridge. Publishing in the check phase, after the event loop has read every
   * request that arrived together, sends them in one write; it delays a publish by one loop turn.
   */
  let waiting: (() => void)[] = [];
  function releaseWaiting(): void {
    const w = waiting;
    waiting = [];
    for (const resolve of w) resolve();
  }
  function nextTurn(): Promise<void> {
    return new Promise((resolve) => {
      if (waiting.push(resolve) === 1) setImmediate(releaseWaiting);
    });
  }

  async function publish(e: Prepared, rlog: Logger | undefined): Promise<PublishResult> {
    const started = performance.now();
    const eventClass = e.eventClass;
    try {
      const ack = await inProduceSpan(ServiceNames.vebaBridge, e.subject, { "messaging.message.id": e.msgId, "messaging.message.body.size": e.payload.length }, (tp) =>
        jet.js.publish(e.subject, e.payload, {
          msgID: e.msgId,
          timeout: config.publishTimeoutMs,
          // Only VSPHERE_EVENTS may take it: an ack from any other stream is not what consumers read.
          expect: { streamName: Streams.events.name },
          ...(tp ? { headers: makeHeaders({ [Headers.traceparent]: tp }) } : {}),
        }),
      );
      m.publishSeconds.observe({ outcome: "ok" }, (performance.now() - started) / 1000);
      m.events.inc({ event_class: eventClass, outcome: ack.duplicate ? "duplicate" : "published" });
      m.eventFrom(e.source);
      rlog?.debug({ id: e.id, eventClass, key: e.key, seq: ack.seq, duplicate: ack.duplicate }, ack.duplicate ? "duplicate event dropped by the stream" : "event stored");
      return { ok: true, seq: ack.seq, duplicate: ack.duplicate };
    } catch (err) {
      m.publishSeconds.observe({ outcome: "failed" }, (performance.now() - started) / 1000);
      m.events.inc({ event_class: eventClass, outcome: "failed" });
      return { ok: false, err };
    }
  }

  async function health(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (req.method !== "GET" && req.method !== "HEAD") throw new Rejection("method_not_allowed", `${path} takes GET`);
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      return;
    }
    const checks = { nats: isNatsConnected(nc) };
    const ready = Object.values(checks).every(Boolean);
    sendJson(res, ready ? 200 : 503, { ready, checks });
  }

  function refuse(req: IncomingMessage, res: ServerResponse, r: Rejection): void {
    m.rejects.inc({ reason: r.reason });
    // Bad requests from a misconfigured sender are worth seeing, but not worth an error each.
    log.warn({ status: r.status, reason: r.reason, method: req.method, url: req.url, remote: req.socket.remoteAddress }, `refused: ${r.message}`);
    const headers: Record<string, string | string[]> = {};
    if (r.status === 401) headers["www-authenticate"] = challenges(config.auth);
    if (r.status === 503) headers["retry-after"] = "1";
    if (r.status === 405) headers.allow = req.url?.startsWith("/events") ? "POST" : "GET, HEAD";
    sendJson(res, r.status, r.toJSON(), headers, req);
  }

  const onRequest = (expectsContinue: boolean) => (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res, expectsContinue).catch((err: unknown) => {
      if (err instanceof Rejection) return refuse(req, res, err);
      log.error({ err, url: req.url }, "bridge request failed");
      if (res.headersSent) res.destroy();
      else sendJson(res, 500, { error: { code: "IAAS_INTERNAL", message: "the bridge failed to handle the request; see its log" } }, {}, req);
    });
  };

  return {
    get port() {
      return port;
    },
    get listening() {
      return server?.listening ?? false;
    },
    async start() {
      const s = createServer(onRequest(false));
      // A body is 1 MiB at most by default: minutes are never needed to send one.
      s.headersTimeout = 20_000;
      s.requestTimeout = 60_000;
      // Answer `Expect: 100-continue` (curl, for bodies over 1 KiB) only once auth and size pass.
      s.on("checkContinue", onRequest(true));
      await new Promise<void>((resolve, reject) => {
        s.once("error", reject);
        s.listen(config.port, config.host, () => {
          s.off("error", reject);
          resolve();
        });
      });
      server = s;
      port = (s.address() as AddressInfo).port;
      log.info({ url: `http://${config.host}:${port}/events`, auth: authRequired(config.auth) ? challenges(config.auth).map((c) => c.split(" ")[0]) : "none", bodyLimit: config.bodyLimit }, "bridge listening");
    },
    async stop() {
      const s = server;
      server = undefined;
      if (s) {
        const closed = new Promise<void>((resolve) => s.close(() => resolve()));
        s.closeIdleConnections();
        // In-flight requests end within the publish timeout; a sender still streaming a refused body does not hold us up.
        const cutoff = setTimeout(() => s.closeAllConnections(), config.publishTimeoutMs + 1_000);
        await closed;
        clearTimeout(cutoff);
      }
    },
  };
}

function busy(): Rejection {
  return new Rejection("busy", "the bridge is holding as many request bytes as it may (BRIDGE_INFLIGHT_BYTES); retry shortly");
}

function tooLarge(limit: number): Rejection {
  return new Rejection("too_large", `the body is larger than the limit of ${limit} bytes (BRIDGE_BODY_LIMIT)`);
}

/**
 * Reads the body, refusing it as soon as it passes `limit`: what is past the limit is never
 * buffered (the rest of the stream is discarded while the 413 goes out). `hold` reserves each
 * chunk in the byte budget (bodies without Content-Length) and throws when it does not fit.
 */
function readBody(req: IncomingMessage, limit: number, hold?: (n: number) => void): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        settled = true;
        req.off("data", onData);
        chunks.length = 0;
        reject(tooLarge(limit));
        return;
      }
      try {
        hold?.(chunk.length);
      } catch (err) {
        settled = true;
        req.off("data", onData);
        chunks.length = 0;
        reject(err);
        return;
      }
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.once("end", () => {
      if (settled) return;
      settled = true;
      resolve(Buffer.concat(chunks, size));
    });
    req.once("error", (err) => {
      if (settled) return;
      settled = true;
      reject(err);
    });
  });
}

/**
 * Sends a JSON answer. When the request body was not read to the end (refused early), the
 * connection is closed after the answer and the rest of the body discarded, never buffered.
 */
function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string | string[]> = {}, req?: IncomingMessage): void {
  const text = `${JSON.stringify(body)}\n`;
  const early = req !== undefined && !req.complete;
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...(early ? { connection: "close" } : {}),
    ...headers,
  });
  res.end(text);
  if (early) {
    req.resume();
    // A sender that keeps streaming after the answer is cut off.
    res.once("finish", () => setTimeout(() => req.socket.destroy(), 2_000).unref());
  }
}

function errText(err: unknown): string {
  const e = err as { name?: string; message?: string; code?: string };
  return `${e?.name ?? "Error"}: ${e?.message ?? String(err)}`.slice(0, 300);
}
