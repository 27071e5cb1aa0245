/**
 * Traces of automatic actions: with a tracer provider as runService sets it up (an in-memory
 * exporter instead of OTLP), a red alarm POSTed to the bridge is one trace: the bridge's request,
 * its publish, remediation's consumption and its requests to vcenter-proxy, and the gateway's
 * consumption of the notice it posts to Slack.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpanKind } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { startTracing, type Tracing } from "@iaas/runtime";
import { waitUntil } from "@iaas/testkit";
import { startWorld, type World } from "./helpers.js";

describe("traces of remediation", () => {
  let w: World;
  let tracing: Tracing;
  const exporter = new InMemorySpanExporter();
  beforeAll(async () => {
    tracing = await startTracing("e2e", {}, { exporter });
    w = await startWorld({ remediation: { maxCpu: 6, maxMemoryGB: 16 } });
  });
  afterAll(async () => {
    await w?.close();
    await tracing?.shutdown();
  });
  const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

  it("bridge request → publish → remediation's consume → proxy requests, and the notice's relay in the same trace", async () => {
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm("VM CPU Usage", { type: "VirtualMachine", name: "DC0_C0_RP0_VM0" }));
    expect(posted.status).toBe(200);
    await w.waitNotice("the action", (x) => x.cause === posted.eventId);
    const subject = "vsphere.event.AlarmStatusChangedEvent";
    // Remediation's consumer span ends after its notice is out (audit, handled mark, ack): wait for both.
    const spans = await waitUntil("the notice's relay span and remediation's consumer span have ended", () => {
      const all = exporter.getFinishedSpans();
      const ended = (scope: string, prefix: string) => all.some((s) => s.kind === SpanKind.CONSUMER && s.instrumentationScope.name === scope && String(s.attributes["messaging.destination.name"]).startsWith(prefix));
      return ended("gateway", "iaas.notify.") && ended("remediation", subject) && all;
    });
    const publish = spans.find((s) => s.kind === SpanKind.PRODUCER && s.name === `publish ${subject}` && s.attributes["messaging.message.id"] === posted.eventId);
    expect(publish, "the bridge's publish of the event").toBeDefined();
    expect(publish!.instrumentationScope.name).toBe("veba-bridge");
    const inTrace = spans.filter((s) => s.spanContext().traceId === publish!.spanContext().traceId);
    const byId = new Map(inTrace.map((s) => [s.spanContext().spanId, s]));
    const server = byId.get(parentOf(publish!)!);
    expect(server?.name).toBe("POST /events");
    expect(server?.kind).toBe(SpanKind.SERVER);
    expect(server?.attributes["http.response.status_code"]).toBe(200);

    const consume = inTrace.find((s) => s.kind === SpanKind.CONSUMER && parentOf(s) === publish!.spanContext().spanId);
    expect(consume?.name).toBe(`process ${subject}`);
    expect(consume?.instrumentationScope.name).toBe("remediation");
    expect(consume?.attributes).toMatchObject({ "messaging.system": "nats", "messaging.operation.type": "process", "messaging.consumer.group.name": "remediation" });
    const requests = inTrace.filter((s) => s.kind === SpanKind.CLIENT && parentOf(s) === consume!.spanContext().spanId).map((s) => s.name);
    expect(requests).toContain("send vcenter.vm.reconfigure");

    const relay = inTrace.find((s) => s.kind === SpanKind.CONSUMER && s.instrumentationScope.name === "gateway");
    expect(relay, "the gateway's relay of the notice, in the event's trace").toBeDefined();
    expect(parentOf(relay!)).toBe(consume!.spanContext().spanId);
    expect(relay!.attributes["messaging.consumer.group.name"]).toBe("gateway-notices");
  });
});
