import { randomBytes } from "node:crypto";

/**
 * W3C trace context (https://www.w3.org/TR/trace-context/): `00-<trace id>-<span id>-<flags>`.
 * The gateway starts a trace per Slack request; every hop keeps the trace id, makes its own span
 * id, and carries the header in NATS messages, so one id finds a command in every service's logs.
 */
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

export function newTraceparent(): string {
  // One read of the random source for both ids (trace: 16 bytes, span: 8).
  const hex = randomBytes(24).toString("hex");
  return `00-${hex.slice(0, 32)}-${hex.slice(32)}-01`;
}

/** A child span of `parent` (same trace, new span id); a fresh trace when `parent` is missing or malformed. */
export function childTraceparent(parent: string | undefined): string {
  const m = parent ? TRACEPARENT.exec(parent) : null;
  if (!m || /^0+$/.test(m[1]!)) return newTraceparent();
  return `00-${m[1]}-${randomBytes(8).toString("hex")}-${m[3]}`;
}

/** The trace id of a traceparent, for log lines; undefined when malformed. */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  return traceparent ? TRACEPARENT.exec(traceparent)?.[1] : undefined;
}
