import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type RequestOptions as HttpRequestOptions } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { ProtocolError, TimeoutError, TransportError, VimFault } from "./errors.js";
import { decodeNode } from "./codec.js";
import { EMPTY_SCOPE, children, childEntries, parseXml, scopeOf, textOf, xsiTypeOf, type NsScope, type XNode } from "./xml.js";
import { ElementSplitter } from "./xml_stream.js";

export const SESSION_COOKIE = "vmware_soap_session";

export interface TransportOptions {
  /** The SOAP endpoint, e.g. `https://vcenter.example.com/sdk`. */
  url: string;
  /** Sent as `SOAPAction: "urn:vim25/<apiVersion>"`. */
  apiVersion: string;
  /** Default per-request timeout. */
  timeoutMs: number;
  /** Replaces the global fetch (tests, proxies, or an undici fetch with its own dispatcher). */
  fetch?: typeof fetch;
  /** Passed through to fetch as `dispatcher`, e.g. an undici `Agent` that skips TLS verification. */
  dispatcher?: unknown;
  /** Skip TLS certificate verification (https, without `fetch`/`dispatcher`). */
  insecure?: boolean;
  /** Connections kept open for reuse (the client's concurrency). */
  maxSockets?: number;
  userAgent?: string;
}

export interface RequestOptions {
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * A running per-call timeout; started before a call queues for a connection slot so queueing
 * counts. Most calls never wait on it (a free slot, an answer in time), so its AbortSignal is made
 * only when something asks for one: a timer of the call's own destroys the request otherwise.
 */
export interface Deadline {
  readonly timeoutMs: number;
  /** Milliseconds left (0 once passed). */
  readonly remainingMs: number;
  /** Whether it has passed (its time is up, or `expire()` said so). */
  readonly passed: boolean;
  /** Aborts when it passes; made on first use. */
  readonly signal: AbortSignal;
  /** Whether `err` is this deadline's abort reason (false when no signal was ever made). */
  isReason(err: unknown): boolean;
  /** Marks it passed now (a timer of the caller's fired) and aborts its signal, if made. */
  expire(): void;
  /** Stops its timer once the call is over. */
  clear(): void;
}

class CallDeadline implements Deadline {
  private readonly at: number;
  private expired = false;
  private ac: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly timeoutMs: number) {
    this.at = performance.now() + timeoutMs;
  }

  get remainingMs(): number {
    return this.expired ? 0 : Math.max(0, this.at - performance.now());
  }

  get passed(): boolean {
    return this.expired || performance.now() >= this.at;
  }

  get signal(): AbortSignal {
    if (this.ac === undefined) {
      this.ac = new AbortController();
      const left = this.remainingMs;
      if (left <= 0) this.expire();
      else {
        this.timer = setTimeout(() => this.expire(), left);
        this.timer.unref();
      }
    }
    return this.ac.signal;
  }

  isReason(err: unknown): boolean {
    return this.ac !== undefined && this.ac.signal.aborted && err === this.ac.signal.reason;
  }

  expire(): void {
    this.expired = true;
    if (this.ac !== undefined && !this.ac.signal.aborted) this.ac.abort(new DOMException(`timed out after ${this.timeoutMs} ms`, "TimeoutError"));
  }

  clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
  }
}

export function startDeadline(timeoutMs: number): Deadline {
  return new CallDeadline(timeoutMs);
}

/**
 * Elements of a response handed over one by one as they arrive instead of inside the parsed
 * document, so memory is one batch of them whatever the size of the answer.
 */
export interface ElementStream {
  /** Where they are below `<returnval>`, e.g. `["filterSet", "objectSet"]` in an UpdateSet. */
  path: readonly string[];
  /** Each element, parsed (not decoded), in document order; what it throws fails the call. */
  onElement: (node: XNode, scope: NsScope) => void;
}

/** Streamed elements are parsed this much XML at a time: fewer parser runs, memory still bounded. */
const STREAM_BATCH_CHARS = 32 * 1024;

/** An error thrown by a stream's consumer, carried through the transport's own error mapping. */
class ConsumerError {
  constructor(readonly error: unknown) {}
}

/** The decoded `<returnval>` elements of a response and the namespace scope they live in. */
export interface SoapResponse {
  returnvals: XNode[];
  scope: NsScope;
}

const ENVELOPE_OPEN =
  '<?xml version="1.0" encoding="UTF-8"?>' +
  '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" ' +
  'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">' +
  "<soapenv:Body>";
const ENVELOPE_CLOSE = "</soapenv:Body></soapenv:Envelope>";

/** A keep-alive connection is closed after this long idle (or earlier, when the server's Keep-Alive header says so). */
const IDLE_SOCKET_MS = 4_000;

/**
 * One SOAP request/response: envelope, session cookie, timeout, and the mapping of failures onto
 * TransportError / TimeoutError / VimFault. Knows nothing about sessions or retries.
 *
 * Requests go over node:http(s) with a keep-alive agent of the transport's own: one write per
 * request and the body read as one buffer. Node's fetch (undici) costs about twice the CPU per call
 * on a small SOAP request (web streams, the body written in pieces), which on a loopback vCenter was
 * most of a power operation's time. A `fetch` or `dispatcher` passed in is still used as given.
 */
export class SoapTransport {
  /** The `vmware_soap_session` value, set from Set-Cookie (Login) and sent on every request. */
  cookie: string | undefined;
  apiVersion: string;
  private readonly agent: HttpAgent | undefined;
  private readonly target: URL;

  constructor(private readonly opts: TransportOptions) {
    this.apiVersion = opts.apiVersion;
    this.target = new URL(opts.url);
    if (opts.fetch === undefined && opts.dispatcher === undefined) {
      const agentOpts = { keepAlive: true, timeout: IDLE_SOCKET_MS, maxSockets: opts.maxSockets ?? Infinity };
      this.agent = this.target.protocol === "https:" ? new HttpsAgent({ ...agentOpts, rejectUnauthorized: !opts.insecure }) : new HttpAgent(agentOpts);
    }
  }

  /** Closes the kept-alive connections (a later request opens a new one). */
  close(): void {
    this.agent?.destroy();
  }

  get url(): string {
    return this.opts.url;
  }

  get defaultTimeoutMs(): number {
    return this.opts.timeoutMs;
  }

  /** Sends `<method xmlns="urn:vim25">...</method>` (already encoded) and returns its returnvals. */
  async send(
    method: string,
    bodyXml: string,
    req: RequestOptions & { deadline?: Deadline | undefined; stream?: ElementStream | undefined } = {},
  ): Promise<SoapResponse> {
    const own = req.deadline === undefined ? startDeadline(req.timeoutMs ?? this.opts.timeoutMs) : undefined;
    try {
      return await this.sendWithin(method, bodyXml, own ?? req.deadline!, req.signal, req.stream);
    } finally {
      own?.clear();
    }
  }

  private async sendWithin(method: string, bodyXml: string, deadline: Deadline, callerSignal: AbortSignal | undefined, stream: ElementStream | undefined): Promise<SoapResponse> {
    const req = { signal: callerSignal };
    const { timeoutMs } = deadline;
    const headers: Record<string, string> = {
      "Content-Type": "text/xml; charset=utf-8",
      SOAPAction: `"urn:vim25/${this.apiVersion}"`,
    };
    if (this.cookie !== undefined) headers.Cookie = `${SESSION_COOKIE}=${this.cookie}`;
    if (this.opts.userAgent) headers["User-Agent"] = this.opts.userAgent;
    const payload = ENVELOPE_OPEN + bodyXml + ENVELOPE_CLOSE;
    if (this.agent !== undefined) {
      let status: number;
      let text: string;
      try {
        ({ status, text } = await this.post(this.agent, headers, payload, deadline, req.signal, stream && ((res) => readSplit(method, res, stream))));
      } catch (err) {
        throw this.failure(method, err, deadline, timeoutMs, req.signal);
      }
      return this.parse(method, status, text);
    }
    const signal = req.signal ? AbortSignal.any([deadline.signal, req.signal]) : deadline.signal;
    const init: RequestInit = { method: "POST", headers, body: payload, signal };
    // Node's fetch takes an undici dispatcher in the init; typed loosely so no undici types are needed.
    if (this.opts.dispatcher !== undefined) (init as { dispatcher?: unknown }).dispatcher = this.opts.dispatcher;

    let status: number;
    let text: string;
    try {
      const res = await (this.opts.fetch ?? fetch)(this.opts.url, init);
      status = res.status;
      this.takeCookie(res.headers.getSetCookie());
      text = stream && status === 200 && res.body ? await readSplit(method, res.body as unknown as AsyncIterable<Uint8Array>, stream) : await res.text();
    } catch (err) {
      throw this.failure(method, err, deadline, timeoutMs, req.signal);
    }
    return this.parse(method, status, text);
  }

  private failure(method: string, err: unknown, deadline: Deadline, timeoutMs: number, callerSignal: AbortSignal | undefined): unknown {
    if (err instanceof ConsumerError) return err.error;
    if (err instanceof ProtocolError) return err;
    if (deadline.passed) return new TimeoutError(`${method}: no response within ${timeoutMs} ms`, { timeoutMs, method, cause: err });
    if (callerSignal?.aborted) return callerSignal.reason;
    const cause = (err as { cause?: unknown }).cause ?? err;
    return new TransportError(`${method}: ${describe(cause)}`, { cause: err, method });
  }

  /**
   * One POST over the keep-alive agent; resolves with the status and the whole body as text, or,
   * with `split` and a 200, with what `split` leaves of the body after taking its elements.
   */
  private post(
    agent: HttpAgent,
    headers: Record<string, string>,
    payload: string,
    deadline: Deadline,
    callerSignal: AbortSignal | undefined,
    split?: (res: IncomingMessage) => Promise<string>,
  ): Promise<{ status: number; text: string }> {
    const t = this.target;
    const options: HttpRequestOptions = {
      protocol: t.protocol,
      hostname: t.hostname.startsWith("[") ? t.hostname.slice(1, -1) : t.hostname,
      port: t.port || undefined,
      path: t.pathname + t.search,
      method: "POST",
      headers: { ...headers, "Content-Length": String(Buffer.byteLength(payload, "utf8")) },
      agent,
    };
    if (t.username || t.password) options.auth = `${decodeURIComponent(t.username)}:${decodeURIComponent(t.password)}`;
    return new Promise((resolve, reject) => {
      callerSignal?.throwIfAborted();
      if (deadline.passed) throw new DOMException(`timed out after ${deadline.timeoutMs} ms`, "TimeoutError");
      // A timer of our own for the deadline, and a listener only for a caller's signal: no
      // AbortController per call, nor http.request's `signal` option (a stream wrapper per request).
      const timer = setTimeout(() => {
        deadline.expire();
        r.destroy(new DOMException(`timed out after ${deadline.timeoutMs} ms`, "TimeoutError"));
      }, deadline.remainingMs);
      timer.unref();
      const onAbort = callerSignal && ((): void => void r.destroy(callerSignal.reason instanceof Error ? callerSignal.reason : new Error(String(callerSignal.reason))));
      if (onAbort) callerSignal!.addEventListener("abort", onAbort, { once: true });
      const settle = <A extends unknown[]>(fn: (...a: A) => void) => (...a: A): void => {
        clearTimeout(timer);
        if (onAbort) callerSignal!.removeEventListener("abort", onAbort);
        fn(...a);
      };
      resolve = settle(resolve);
      reject = settle(reject);
      const onResponse = (res: IncomingMessage): void => {
        this.takeCookie(res.headers["set-cookie"]);
        if (split && res.statusCode === 200) {
          // A connection that dies mid-answer ends the iteration early: the rest lacks its closing Envelope tag.
          split(res).then((text) => resolve({ status: 200, text }), reject);
          return;
        }
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("close", () => {
          // A connection that dies mid-answer ends the message without `complete`.
          if (!res.complete) reject(Object.assign(new Error("the connection closed before the whole response arrived"), { code: "ECONNRESET" }));
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8") }));
      };
      const r = t.protocol === "https:" ? httpsRequest(options, onResponse) : httpRequest(options, onResponse);
      r.on("error", reject);
      // A string, not a Buffer: Node then sends the head and the body in one write (a Buffer goes
      // as a second chunk, one writev of two).
      r.end(payload, "utf8");
    });
  }

  private takeCookie(setCookie: Iterable<string> | undefined): void {
    for (const c of setCookie ?? []) {
      const m = /^\s*vmware_soap_session=([^;]*)/.exec(c);
      // Kept verbatim (vCenter quotes it) and sent back as received, as a browser would.
      if (m?.[1] !== undefined) this.cookie = m[1];
    }
  }

  private parse(method: string, status: number, text: string): SoapResponse {
    let root: XNode;
    try {
      // A whole response ends with the envelope's end tag. Checking that instead of validating the
      // whole document (a second pass over every response) still refuses a cut-off answer, which the
      // lenient parser would otherwise read as a shorter one (a listing with VMs missing).
      if (!endsWithEnvelope(text)) throw new ProtocolError(`${method}: the response is incomplete (no closing Envelope tag)`);
      root = parseXml(text, false);
    } catch (err) {
      if (status !== 200) throw new TransportError(`${method}: HTTP ${status}`, { status, method, cause: err });
      throw err;
    }
    const envelope = children(root, "Envelope")[0];
    const envScope = envelope ? scopeOf(envelope, EMPTY_SCOPE) : EMPTY_SCOPE;
    const body = envelope ? children(envelope, "Body")[0] : undefined;
    if (envelope === undefined || body === undefined) {
      if (status !== 200) throw new TransportError(`${method}: HTTP ${status}`, { status, method });
      throw new ProtocolError(`${method}: response has no SOAP Body`);
    }
    const bodyScope = scopeOf(body, envScope);
    const fault = children(body, "Fault")[0];
    if (fault !== undefined) throw soapFault(method, fault, bodyScope);
    if (status !== 200) throw new TransportError(`${method}: HTTP ${status}`, { status, method });
    const response = children(body, `${method}Response`)[0];
    if (response === undefined) throw new ProtocolError(`${method}: response has no ${method}Response element`);
    const scope = scopeOf(response, bodyScope);
    return { returnvals: children(response, "returnval"), scope };
  }
}

/**
 * `<soapenv:Fault>` → VimFault. The type is the detail element's xsi:type (vCenter and vcsim both send
 * it), else its name without the `Fault` suffix. A fault without detail is a MethodFault.
 */
function soapFault(method: string, fault: XNode, scope: NsScope): VimFault {
  const fscope = scopeOf(fault, scope);
  const faultString = textOf(children(fault, "faultstring")[0] ?? {});
  const detail = children(fault, "detail")[0];
  const first = detail ? childEntries(detail)[0] : undefined;
  if (detail === undefined || first === undefined) return new VimFault("MethodFault", {}, faultString, { method });
  const [elemName, nodes] = first;
  const node = nodes[0] ?? {};
  const dscope = scopeOf(detail, fscope);
  const type = xsiTypeOf(node, scopeOf(node, dscope)) ?? elemName.replace(/Fault$/, "");
  const decoded = decodeNode(node, dscope, "MethodFault", elemName);
  const obj = typeof decoded === "object" && decoded !== null ? (decoded as Record<string, unknown>) : {};
  return new VimFault(type, { ...obj, _type: type }, faultString, { method });
}

function endsWithEnvelope(text: string): boolean {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) <= 32) end--;
  const open = text.lastIndexOf("</", end);
  if (open < 0 || text.charCodeAt(end - 1) !== 62 /* > */) return false;
  const tag = text.slice(open + 2, end - 1).trim();
  return tag === "Envelope" || tag.endsWith(":Envelope");
}

function describe(cause: unknown): string {
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return typeof code === "string" && !cause.message.includes(code) ? `${code} ${cause.message}` : cause.message;
  }
  return String(cause);
}

/**
 * Reads a response body piece by piece, handing the stream's elements over in batches as they
 * arrive; returns the rest of the document. A body cut off half-way has handed over what arrived
 * before the cut, and then fails as incomplete (no closing Envelope tag) like any other.
 */
async function readSplit(method: string, body: AsyncIterable<Uint8Array>, stream: ElementStream): Promise<string> {
  const leaf = stream.path.at(-1)!;
  let batch: string[] = [];
  let batchChars = 0;
  let batchScope: NsScope = EMPTY_SCOPE;
  const flush = (): void => {
    if (batch.length === 0) return;
    const xml = `<b>${batch.join("")}</b>`;
    batch = [];
    batchChars = 0;
    try {
      for (const n of children(children(parseXml(xml, false), "b")[0] ?? {}, leaf)) stream.onElement(n, batchScope);
    } catch (err) {
      throw new ConsumerError(err);
    }
  };
  const splitter = new ElementSplitter(["Envelope", "Body", `${method}Response`, "returnval", ...stream.path], (xml, scope) => {
    if (scope !== batchScope) flush();
    batchScope = scope;
    batch.push(xml);
    batchChars += xml.length;
    if (batchChars >= STREAM_BATCH_CHARS) flush();
  });
  const decoder = new TextDecoder("utf-8");
  for await (const chunk of body) splitter.push(decoder.decode(chunk, { stream: true }));
  splitter.push(decoder.decode());
  flush();
  return splitter.end();
}
