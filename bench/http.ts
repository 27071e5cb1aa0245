import { Agent, createServer, request, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * The load generator's HTTP client: node:http with keep-alive, no fetch/undici layers, so the
 * client's own cost is small and the same for every target it is compared across.
 */
export class HttpClient {
  readonly agent: Agent;
  constructor(maxSockets: number) {
    this.agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  post(url: string, headers: Record<string, string>, body: string, timeoutMs = 10_000): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request(url, { method: "POST", agent: this.agent, headers: { ...headers, "content-length": String(Buffer.byteLength(body)) }, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)));
      req.on("error", reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export interface OpenLoopResult {
  /** Per request: from its scheduled send time to the end of the answer (so a late send counts against the target). */
  latencies: number[];
  errors: number;
  /** First few error descriptions, for the report. */
  errorSamples: string[];
  /** Requests sent per second as actually achieved. */
  achievedRate: number;
  /** The load generator's own event-loop delay (ms): if this is large, the generator, not the server, was late. */
  loopDelay: { p99: number; max: number };
  /** Sent-at offsets (ms from start) of requests slower than 10 ms, for finding stalls. */
  slowAt: number[];
}

/**
 * Open-loop load: request i is due at t0 + i/rate whether or not earlier ones have answered, the
 * way independent Slack users arrive. Latency is measured from the due time, so queueing in the
 * client or a slow server cannot hide (no coordinated omission). Bounded: rate × duration requests.
 */
export async function openLoop(rate: number, durationMs: number, fire: () => Promise<boolean | string>): Promise<OpenLoopResult> {
  const n = Math.max(1, Math.round((rate * durationMs) / 1000));
  const latencies: number[] = [];
  const errorSamples: string[] = [];
  let errors = 0;
  const pending: Promise<void>[] = [];
  const slowAt: number[] = [];
  const delay = monitorEventLoopDelay({ resolution: 2 });
  delay.enable();
  const t0 = performance.now() + 20;
  for (let i = 0; i < n; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0.5) await sleep(wait);
    pending.push(
      fire().then(
        (ok) => {
          if (ok === true) {
            const l = performance.now() - due;
            latencies.push(l);
            if (l > 10) slowAt.push(due - t0);
          } else {
            errors++;
            if (errorSamples.length < 3) errorSamples.push(String(ok));
          }
        },
        (err: unknown) => {
          errors++;
          if (errorSamples.length < 3) errorSamples.push(String(err));
        },
      ),
    );
  }
  const sentIn = performance.now() - t0;
  await Promise.all(pending);
  delay.disable();
  return { latencies, errors, errorSamples, achievedRate: (n * 1000) / Math.max(sentIn, 1), loopDelay: { p99: delay.percentile(99) / 1e6, max: delay.max / 1e6 }, slowAt };
}

/**
 * Closed-loop workers: `workers` loops, each running `op(worker, i)` back to back until `durationMs`
 * has passed (no new op starts after that) or `maxPerWorker` ops are done. Returns completions/s.
 */
export async function closedLoop(
  workers: number,
  durationMs: number,
  maxPerWorker: number,
  op: (worker: number, i: number) => Promise<boolean | string>,
): Promise<{ ok: number; errors: number; errorSamples: string[]; seconds: number; perSecond: number; latencies: number[] }> {
  let ok = 0;
  let errors = 0;
  const errorSamples: string[] = [];
  const latencies: number[] = [];
  const t0 = performance.now();
  const end = t0 + durationMs;
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; i < maxPerWorker && performance.now() < end; i++) {
        const s = performance.now();
        try {
          const r = await op(w, i);
          if (r === true) {
            ok++;
            latencies.push(performance.now() - s);
          } else {
            errors++;
            if (errorSamples.length < 3) errorSamples.push(String(r));
          }
        } catch (err) {
          errors++;
          if (errorSamples.length < 3) errorSamples.push(String(err));
        }
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return { ok, errors, errorSamples, seconds, perSecond: ok / seconds, latencies };
}

/** A message the gateway posted to a response URL, with its arrival time (performance.now()). */
export interface SinkPost {
  id: string;
  at: number;
  body: Record<string, unknown>;
}

/**
 * Slack's side for the benchmark: response URLs under `/response/<id>` and a Web API under `/api/`
 * that answers ok. Unlike the test stand-in, which is polled every 20 ms, a waiter here is woken
 * by the post itself, so an end-to-end time is not rounded up to the next poll.
 */
export class SlackSink {
  private server: Server;
  private base = "";
  private readonly waiters = new Map<string, { pred: (p: SinkPost) => boolean; resolve: (p: SinkPost) => void }>();
  readonly posts = new Map<string, SinkPost[]>();
  /** Web API calls (`/api/<method>`, e.g. the notices posted with `chat.postMessage`), in arrival order. */
  readonly apiCalls: { method: string; at: number; body: Record<string, unknown> }[] = [];

  private constructor() {
    this.server = createServer((req, res) => {
      void readBody(req).then((raw) => {
        const at = performance.now();
        const path = (req.url ?? "/").split("?")[0]!;
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(raw) as Record<string, unknown>;
        } catch {
          body = Object.fromEntries(new URLSearchParams(raw));
        }
        if (path.startsWith("/api/")) this.apiCalls.push({ method: path.slice("/api/".length), at, body });
        if (path.startsWith("/response/")) {
          const id = path.slice("/response/".length);
          const post = { id, at, body };
          const list = this.posts.get(id) ?? [];
          list.push(post);
          this.posts.set(id, list);
          const w = this.waiters.get(id);
          if (w && w.pred(post)) {
            this.waiters.delete(id);
            w.resolve(post);
          }
        }
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ ok: true }));
      });
    });
  }

  static async start(): Promise<SlackSink> {
    const s = new SlackSink();
    await new Promise<void>((resolve) => s.server.listen(0, "127.0.0.1", resolve));
    s.base = `http://127.0.0.1:${(s.server.address() as AddressInfo).port}`;
    return s;
  }

  get apiUrl(): string {
    return `${this.base}/api/`;
  }

  responseUrl(id: string): string {
    return `${this.base}/response/${id}`;
  }

  /** Resolves at the first post to `id` that satisfies `pred` (also one that already arrived); rejects after `timeoutMs`. */
  waitFor(id: string, pred: (p: SinkPost) => boolean, timeoutMs: number): Promise<SinkPost> {
    const seen = this.posts.get(id)?.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        reject(new Error(`no matching post to response URL ${id} within ${timeoutMs} ms; got: ${JSON.stringify(this.posts.get(id) ?? []).slice(0, 300)}`));
      }, timeoutMs);
      this.waiters.set(id, {
        pred,
        resolve: (p) => {
          clearTimeout(timer);
          resolve(p);
        },
      });
    });
  }

  /** Forgets recorded posts (between phases, so memory stays flat). */
  clear(): void {
    this.posts.clear();
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
