import { Svcm, type Service, type ServiceGroup, type ServiceMsg } from "@nats-io/services";
import type { NatsConnection } from "@nats-io/transport-node";
import { errors as natsErrors } from "@nats-io/transport-node";
import type { z } from "zod";
import { CodedErrorSchema, ErrorCatalogue, IaasError, formatIssues, Headers, isReplyInbox, oneLine, type ErrorCode } from "@iaas/contracts";
import { decodeJson, encodeJson, makeHeaders } from "./jetstream.js";
import { traceIdOf } from "./trace.js";
import { SpanKind, natsAttributes, otelContext, startHop } from "./tracing.js";
import type { Logger } from "./log.js";

export type { Service, ServiceGroup };

/** Registers the process as a NATS micro service (`nats micro ls` lists it). */
export async function addMicroService(nc: NatsConnection, name: string, version: string, description: string): Promise<Service> {
  return new Svcm(nc).add({ name, version, description });
}

export interface JsonEndpoint<Req extends z.ZodType, Res extends z.ZodType> {
  name: string;
  subject: string;
  request: Req;
  response: Res;
}

/**
 * A request/reply endpoint that speaks JSON: the request is parsed with its schema, the handler's
 * answer with the response schema, and every failure goes back as a coded micro-service error.
 * A request whose reply subject is not a NATS user's inbox is not handled at all: the sender chose
 * that subject, and the answer would be published under this service's name wherever it points
 * (`$JS.API.STREAM.PURGE.…`). The server's permissions refuse such a publish too; this keeps the
 * handler from even running (a vm-destroy with a hostile reply must not destroy).
 * @nats-io/services only catches synchronous throws from a handler (a rejected promise would go
 * unanswered and unhandled), so the async work is wrapped here.
 */
export function addJsonEndpoint<Req extends z.ZodType, Res extends z.ZodType>(
  service: Service,
  ep: JsonEndpoint<Req, Res>,
  handler: (req: z.infer<Req>, msg: ServiceMsg) => Promise<z.infer<Res>>,
  log: Logger,
): void {
  const scope = service.info().name;
  service.addEndpoint(ep.name, {
    subject: ep.subject,
    handler: (err, msg) => {
      if (err) {
        log.error({ err, endpoint: ep.name }, "endpoint stopped");
        return;
      }
      const requestId = msg.headers?.get(Headers.requestId) || undefined;
      const traceId = traceIdOf(msg.headers?.get(Headers.traceparent) || undefined);
      if (!isReplyInbox(msg.reply)) {
        log.warn({ endpoint: ep.name, requestId, traceId, reply: msg.reply?.slice(0, 120) }, `${ep.name}: refused a request whose reply subject is not an inbox`);
        return;
      }
      const started = performance.now();
      // A server span under the caller's (its traceparent header); the handler runs in it, so the
      // calls it makes (a SOAP call to vCenter) are its children.
      const hop = startHop(scope, `process ${ep.subject}`, SpanKind.SERVER, natsAttributes(ep.subject, "process", "process"), msg.headers?.get(Headers.traceparent) || "");
      void otelContext.with(hop.ctx, async () => {
        try {
          const raw = decodeJson(msg.data);
          const parsed = ep.request.safeParse(raw);
          if (!parsed.success) throw new IaasError("IAAS_BAD_REQUEST", `bad ${ep.subject} request: ${formatIssues(parsed.error)}`);
          const out = await handler(parsed.data, msg);
          msg.respond(encodeJson(ep.response.parse(out)));
          log.debug({ endpoint: ep.name, requestId, traceId, ms: Math.round(performance.now() - started) }, "handled");
        } catch (e) {
          const ie = IaasError.from(e);
          // An expected refusal (a VM already off) is not an incident: no stack, just the code and its cause's type.
          if (ie.code === "IAAS_INTERNAL") log.error({ endpoint: ep.name, requestId, traceId, code: ie.code, err: e }, `${ep.name} failed: ${ie.message}`);
          else log.info({ endpoint: ep.name, requestId, traceId, code: ie.code, cause: causeName(ie.cause) }, `${ep.name} failed: ${ie.message}`);
          msg.respondError(ie.status, oneLine(`${ie.code}: ${ie.message}`), encodeJson(ie.toJSON()));
          hop.fail(ie);
        } finally {
          hop.end();
        }
      });
    },
  });
}

/**
 * Calls a JSON endpoint. Service errors come back as IaasError with their code; no responder
 * is IAAS_UNAVAILABLE and a timeout IAAS_TIMEOUT, both retryable.
 */
export async function requestJson<Req extends z.ZodType, Res extends z.ZodType>(
  nc: NatsConnection,
  ep: JsonEndpoint<Req, Res>,
  req: z.input<Req>,
  opts: { timeoutMs: number; requestId?: string; traceparent?: string },
): Promise<z.infer<Res>> {
  const valid = ep.request.safeParse(req);
  if (!valid.success) throw new IaasError("IAAS_BAD_REQUEST", `bad ${ep.subject} request: ${formatIssues(valid.error)}`);
  // A client span under the caller's traceparent (or the active span); the header carries it when recorded.
  const hop = startHop("@iaas/runtime", `send ${ep.subject}`, SpanKind.CLIENT, natsAttributes(ep.subject, "send", "request"), opts.traceparent);
  const traceparent = hop.span.isRecording() ? hop.traceparent : opts.traceparent;
  const headers = opts.requestId || traceparent ? makeHeaders({ [Headers.requestId]: opts.requestId, [Headers.traceparent]: traceparent }) : undefined;
  try {
    return await answerOf(nc, ep, valid.data, opts.timeoutMs, headers);
  } catch (err) {
    hop.fail(err);
    throw err;
  } finally {
    hop.end();
  }
}

async function answerOf<Req extends z.ZodType, Res extends z.ZodType>(nc: NatsConnection, ep: JsonEndpoint<Req, Res>, data: z.infer<Req>, timeoutMs: number, headers: ReturnType<typeof makeHeaders> | undefined): Promise<z.infer<Res>> {
  const opts = { timeoutMs };
  let msg;
  try {
    msg = await nc.request(ep.subject, encodeJson(data), { timeout: opts.timeoutMs, ...(headers ? { headers } : {}) });
  } catch (err) {
    if (err instanceof natsErrors.NoRespondersError) {
      throw new IaasError("IAAS_UNAVAILABLE", `no ${ep.subject.split(".")[0]} service is running`, { cause: err });
    }
    if (err instanceof natsErrors.TimeoutError) {
      throw new IaasError("IAAS_TIMEOUT", `No answer from the ${ep.subject.split(".")[0]} service within ${Math.round(opts.timeoutMs / 1000)} s; the operation may still complete.`, { cause: err });
    }
    if (err instanceof natsErrors.RequestError && err.isNoResponders()) {
      throw new IaasError("IAAS_UNAVAILABLE", `no ${ep.subject.split(".")[0]} service is running`, { cause: err });
    }
    throw new IaasError("IAAS_UNAVAILABLE", `request to ${ep.subject} failed`, { cause: err });
  }
  const code = msg.headers?.get(Headers.serviceErrorCode);
  if (code) {
    const body = msg.data.length ? CodedErrorSchema.safeParse(safeJson(msg.data)) : undefined;
    if (body?.success) throw IaasError.fromCoded(body.data);
    const desc = msg.headers?.get(Headers.serviceError) ?? "";
    const m = /^(IAAS_[A-Z_]+): (.*)$/.exec(desc);
    if (m && m[1]! in ErrorCatalogue) throw new IaasError(m[1] as ErrorCode, m[2]);
    throw new IaasError("IAAS_INTERNAL", `${ep.subject} failed with ${code}: ${desc}`);
  }
  const parsed = ep.response.safeParse(decodeJson(msg.data));
  if (!parsed.success) throw new IaasError("IAAS_INTERNAL", `bad ${ep.subject} response: ${formatIssues(parsed.error)}`);
  return parsed.data;
}

function causeName(cause: unknown): string | undefined {
  if (!cause || typeof cause !== "object") return undefined;
  const c = cause as { faultType?: unknown; name?: unknown };
  return typeof c.faultType === "string" ? c.faultType : typeof c.name === "string" ? c.name : undefined;
}

function safeJson(data: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(data));
  } catch {
    return undefined;
  }
}
