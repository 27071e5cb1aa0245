import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, context, trace, type Attributes, type Context, type Span } from "@opentelemetry/api";
import type { SpanExporter } from "@opentelemetry/sdk-trace-base";
import { Headers } from "@iaas/contracts";
import { ConfigError } from "./config.js";
import { childTraceparent, newTraceparent } from "./trace.js";

/**
 * Spans over OTLP, off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `…_TRACES_ENDPOINT`) is set.
 * Unset, nothing of the SDK is even loaded: the code below talks to @opentelemetry/api, whose
 * tracer is then a no-op, and the traceparent header goes on as before (a new span id per hop).
 * Set, each hop's span id is the one in the header it sends, so the spans of the gateway, the
 * command service, vcenter-proxy and its SOAP calls are one trace.
 */
export interface Tracing {
  /** Spans are exported (an endpoint was configured, or an exporter passed). */
  enabled: boolean;
  /** Exports what is still buffered and stops; safe to call when disabled. */
  shutdown(): Promise<void>;
}

const OFF: Tracing = { enabled: false, shutdown: async () => undefined };
let active: Tracing | undefined;

export interface TracingOptions {
  /** Exports here instead of OTLP (tests: InMemorySpanExporter), each span as it ends. */
  exporter?: SpanExporter;
}

/**
 * Sets up the process's tracer provider once (`service.name` = `serviceName`); a second call
 * answers the first one's. runService calls it before anything else and shuts it down last.
 */
export async function startTracing(serviceName: string, env: Record<string, string | undefined> = process.env, opts: TracingOptions = {}): Promise<Tracing> {
  if (active) return active;
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!opts.exporter && (!endpoint || env.OTEL_SDK_DISABLED === "true" || env.OTEL_TRACES_EXPORTER === "none")) return OFF;
  if (!opts.exporter) {
    for (const name of ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"]) {
      const v = env[name];
      if (v && v !== "http/json") throw new ConfigError([name], `invalid configuration: ${name}: only http/json is supported (OTLP/JSON over HTTP, port 4318 on a collector)`);
    }
  }
  // Loaded only here: a service without an endpoint never pays for the SDK.
  const [{ BasicTracerProvider, BatchSpanProcessor, SimpleSpanProcessor }, { resourceFromAttributes }, { AsyncLocalStorageContextManager }] = await Promise.all([
    import("@opentelemetry/sdk-trace-base"),
    import("@opentelemetry/resources"),
    import("@opentelemetry/context-async-hooks"),
  ]);
  const processor = opts.exporter
    ? new SimpleSpanProcessor(opts.exporter)
    : new BatchSpanProcessor(new (await import("@opentelemetry/exporter-trace-otlp-http")).OTLPTraceExporter());
  const provider = new BasicTracerProvider({ resource: resourceFromAttributes(resourceAttributes(serviceName, env)), spanProcessors: [processor] });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
  const t: Tracing = {
    enabled: true,
    async shutdown() {
      if (active !== t) return;
      active = undefined;
      await provider.shutdown();
      trace.disable();
      context.disable();
    },
  };
  active = t;
  return t;
}

/**
 * The process's resource: `OTEL_RESOURCE_ATTRIBUTES` (`key=value` pairs, comma-separated, values
 * percent-encoded as the SDK specification says), then `service.name` from `OTEL_SERVICE_NAME`,
 * or the service's own name. A malformed pair is a configuration error, not silently dropped.
 */
export function resourceAttributes(serviceName: string, env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  const raw = env.OTEL_RESOURCE_ATTRIBUTES?.trim();
  if (raw) {
    for (const pair of raw.split(",")) {
      if (!pair.trim()) continue;
      const eq = pair.indexOf("=");
      const key = eq > 0 ? pair.slice(0, eq).trim() : "";
      let value: string | undefined;
      try {
        value = eq > 0 ? decodeURIComponent(pair.slice(eq + 1).trim()) : undefined;
      } catch {
        value = undefined;
      }
      if (!key || value === undefined) throw new ConfigError(["OTEL_RESOURCE_ATTRIBUTES"], "invalid configuration: OTEL_RESOURCE_ATTRIBUTES: expected key=value pairs separated by commas, values percent-encoded");
      out[key] = value;
    }
  }
  out["service.name"] = env.OTEL_SERVICE_NAME?.trim() || out["service.name"] || serviceName;
  return out;
}

/** The attribute names of OpenTelemetry's messaging conventions used here (incubating, so spelled out). */
export const MessagingAttrs = {
  system: "messaging.system",
  destination: "messaging.destination.name",
  operationType: "messaging.operation.type",
  operationName: "messaging.operation.name",
  messageId: "messaging.message.id",
  bodySize: "messaging.message.body.size",
} as const;

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The context of a remote parent given as a W3C traceparent; ROOT_CONTEXT when missing or malformed. */
export function contextOf(traceparent: string | undefined): Context {
  const m = traceparent ? TRACEPARENT.exec(traceparent) : null;
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, { traceId: m[1]!, spanId: m[2]!, traceFlags: parseInt(m[3]!, 16) & TraceFlags.SAMPLED, isRemote: true });
}

/** A span of this process and the traceparent that calls made inside it carry. */
export interface HopSpan {
  span: Span;
  /** The context with this span active: run the hop's work in it (`context.with`). */
  ctx: Context;
  /**
   * What goes on in headers: this span when it is recorded; otherwise, as without tracing, a new
   * span id under the parent's trace (or a new trace).
   */
  traceparent: string;
  /** Marks the span failed with the error's name (never its message: it may quote a request). */
  fail(err: unknown): void;
  end(): void;
}

/**
 * Starts a span under `parent`: a traceparent (from a header), or the active context when
 * undefined. `tracerName` is the instrumentation scope: the service or package making the span.
 */
export function startHop(tracerName: string, name: string, kind: SpanKind, attributes: Attributes, parent?: string): HopSpan {
  const parentCtx = parent === undefined ? context.active() : contextOf(parent);
  const span = trace.getTracer(tracerName).startSpan(name, { kind, attributes }, parentCtx);
  const ctx = trace.setSpan(parentCtx, span);
  const sc = span.spanContext();
  const parentSc = trace.getSpanContext(parentCtx);
  // The SDK made a span (recorded, or sampled out with flags 00): its id goes on. The no-op tracer
  // answers the parent's own context (or an invalid one): a new span id under it, as before tracing.
  const made = trace.isSpanContextValid(sc) && sc.spanId !== parentSc?.spanId;
  const traceparent = made ? format(sc) : parentSc && trace.isSpanContextValid(parentSc) ? childTraceparent(format(parentSc)) : newTraceparent();
  return {
    span,
    ctx,
    traceparent,
    fail(err) {
      const e = err as { code?: unknown; name?: unknown; faultType?: unknown };
      const type = typeof e?.code === "string" ? e.code : typeof e?.faultType === "string" ? e.faultType : typeof e?.name === "string" ? e.name : "Error";
      span.setAttribute("error.type", type);
      span.setStatus({ code: SpanStatusCode.ERROR, message: type });
    },
    end: () => span.end(),
  };
}

/** Spans are exported in this process: code on a hot path makes spans and headers only then. */
export function tracingEnabled(): boolean {
  return active !== undefined;
}

/**
 * Publishes in a producer span (`publish <subject>`) under the active span: `fn` gets the
 * traceparent the message carries. Without tracing, `fn` runs alone and gets undefined (no header
 * is added, as before tracing).
 */
export async function inProduceSpan<T>(scope: string, subject: string, attributes: Attributes, fn: (traceparent: string | undefined) => Promise<T>): Promise<T> {
  if (!active) return fn(undefined);
  const hop = startHop(scope, `publish ${subject}`, SpanKind.PRODUCER, { ...natsAttributes(subject, "send", "publish"), ...attributes });
  return inHop(hop, () => fn(hop.traceparent));
}

/** The traceparent of the span active here (a consumer span a handler runs in), if any is recorded. */
export function activeTraceparent(): string | undefined {
  const sc = trace.getSpanContext(context.active());
  return sc && trace.isSpanContextValid(sc) ? format(sc) : undefined;
}

function format(sc: { traceId: string; spanId: string; traceFlags: number }): string {
  return `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & TraceFlags.SAMPLED}`;
}

/** Attributes of a NATS hop by OpenTelemetry's messaging conventions. */
export function natsAttributes(subject: string, operationType: "send" | "receive" | "process", operationName: string): Attributes {
  return { [MessagingAttrs.system]: "nats", [MessagingAttrs.destination]: subject, [MessagingAttrs.operationType]: operationType, [MessagingAttrs.operationName]: operationName };
}

/**
 * Handles one JetStream delivery in a consumer span (`process <subject>`) under the span that
 * published it (its traceparent header), with the handler running in the span's context so the
 * requests it makes and the messages it publishes are its children. A rejection marks the span
 * failed and is passed on.
 */
export async function inConsumeSpan<T>(
  scope: string,
  group: string,
  m: { subject: string; data: Uint8Array; headers?: { get(k: string): string } | undefined },
  fn: (hop: HopSpan) => Promise<T>,
): Promise<T> {
  const hop = startHop(scope, `process ${m.subject}`, SpanKind.CONSUMER, {
    ...natsAttributes(m.subject, "process", "process"),
    "messaging.consumer.group.name": group,
    "messaging.message.body.size": m.data.length,
  }, m.headers?.get(Headers.traceparent) || "");
  return inHop(hop, () => fn(hop));
}

/** Runs `fn` in the hop's context; a rejection marks the span failed and is passed on; the span ends either way. */
export async function inHop<T>(hop: HopSpan, fn: () => Promise<T>): Promise<T> {
  try {
    return await context.with(hop.ctx, fn);
  } catch (err) {
    hop.fail(err);
    throw err;
  } finally {
    hop.end();
  }
}

export { SpanKind, context as otelContext };
