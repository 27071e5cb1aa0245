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
  userAgent?: string;
}

export interface RequestOptions {
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

/** A running per-call timeout; started before a call queues for a connection slot so queueing counts. */
export interface Deadline {
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
}

export function startDeadline(timeoutMs: number): Deadline {
  return { timeoutMs, signal: AbortSignal.timeout(timeoutMs) };
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

/**
 * One SOAP request/response over fetch: envelope, session cookie, timeout, and the mapping of
 * failures onto TransportError / TimeoutError / VimFault. Knows nothing about sessions or retries.
 */
export class SoapTransport {
  /** The `vmware_soap_session` value, set from Set-Cookie (Login) and sent on every request. */
  cookie: string | undefined;
  apiVersion: string;

  constructor(private readonly opts: TransportOptions) {
    this.apiVersion = opts.apiVersion;
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
    const { timeoutMs, signal: timeout } = req.deadline ?? startDeadline(req.timeoutMs ?? this.opts.timeoutMs);
    const signal = req.signal ? AbortSignal.any([timeout, req.signal]) : timeout;
    const headers: Record<string, string> = {
      "Content-Type": "text/xml; charset=utf-8",
      SOAPAction: `"urn:vim25/${this.apiVersion}"`,
    };
    if (this.cookie !== undefined) headers.Cookie = `${SESSION_COOKIE}=${this.cookie}`;
    if (this.opts.userAgent) headers["User-Agent"] = this.opts.userAgent;
    const init: RequestInit = { method: "POST", headers, body: ENVELOPE_OPEN + bodyXml + ENVELOPE_CLOSE, signal };
    // Node's fetch takes an undici dispatcher in the init; typed loosely so no undici types are needed.
    if (this.opts.dispatcher !== undefined) (init as { dispatcher?: unknown }).dispatcher = this.opts.dispatcher;

    let status: number;
    let text: string;
    try {
      const res = await (this.opts.fetch ?? fetch)(this.opts.url, init);
      status = res.status;
      this.takeCookie(res.headers);
      text = req.stream && status === 200 && res.body ? await readSplit(method, res.body, req.stream) : await res.text();
    } catch (err) {
      if (err instanceof ConsumerError) throw err.error;
      if (err instanceof ProtocolError) throw err;
      if (timeout.aborted) {
        throw new TimeoutError(`${method}: no response within ${timeoutMs} ms`, { timeoutMs, method, cause: err });
      }
      if (req.signal?.aborted) throw req.signal.reason;
      const cause = (err as { cause?: unknown }).cause ?? err;
      throw new TransportError(`${method}: ${describe(cause)}`, { cause: err, method });
    }
    return this.parse(method, status, text);
  }

  private takeCookie(headers: Headers): void {
    for (const c of headers.getSetCookie()) {
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

/**
 * Reads a response body piece by piece, handing the stream's elements over in batches as they
 * arrive; returns the rest of the document. A body cut off half-way has handed over what arrived
 * before the cut, and then fails as incomplete (no closing Envelope tag) like any other.
 */
async function readSplit(method: string, body: ReadableStream<Uint8Array>, stream: ElementStream): Promise<string> {
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
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) splitter.push(decoder.decode(chunk, { stream: true }));
  splitter.push(decoder.decode());
  flush();
  return splitter.end();
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
