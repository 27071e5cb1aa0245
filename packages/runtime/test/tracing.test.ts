import { afterEach, describe, expect, it } from "vitest";
import { SpanKind, trace } from "@opentelemetry/api";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { ConfigError } from "../src/config.js";
import { contextOf, natsAttributes, resourceAttributes, startHop, startTracing, type Tracing } from "../src/tracing.js";

const PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

describe("tracing", () => {
  let t: Tracing | undefined;
  afterEach(async () => {
    await t?.shutdown();
    t = undefined;
  });

  it("is off without an endpoint: no provider is set, and a hop keeps the trace with a new span id", async () => {
    t = await startTracing("power", {});
    expect(t.enabled).toBe(false);
    expect(trace.getTracerProvider().getTracer("x").startSpan("y").isRecording()).toBe(false);
    const hop = startHop("power", "process iaas.cmd.power.off", SpanKind.CONSUMER, {}, PARENT);
    expect(hop.span.isRecording()).toBe(false);
    expect(hop.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
    expect(hop.traceparent).not.toBe(PARENT);
    // No parent: a new trace, as the gateway starts one per Slack request.
    expect(startHop("gateway", "slack.command", SpanKind.SERVER, {}, "").traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });

  it("stays off when disabled by OTEL_SDK_DISABLED or OTEL_TRACES_EXPORTER=none, even with an endpoint", async () => {
    expect((await startTracing("power", { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1", OTEL_SDK_DISABLED: "true" })).enabled).toBe(false);
    expect((await startTracing("power", { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1", OTEL_TRACES_EXPORTER: "none" })).enabled).toBe(false);
  });

  it("refuses a protocol other than http/json, naming the variable", async () => {
    await expect(startTracing("power", { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })).rejects.toThrow(ConfigError);
    await expect(startTracing("power", { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://127.0.0.1:1", OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/protobuf" })).rejects.toThrow(/OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: only http\/json/);
  });

  it("on: a hop is a child of the traceparent it arrived with, and the header it sends is its own span", async () => {
    const exporter = new InMemorySpanExporter();
    t = await startTracing("power", {}, { exporter });
    expect(t.enabled).toBe(true);
    const hop = startHop("power", "process iaas.cmd.power.off", SpanKind.CONSUMER, natsAttributes("iaas.cmd.power.off", "process", "process"), PARENT);
    const sc = hop.span.spanContext();
    expect(hop.traceparent).toBe(`00-0af7651916cd43dd8448eb211c80319c-${sc.spanId}-01`);
    hop.fail(Object.assign(new Error("no VM named x (secret detail)"), { code: "IAAS_NOT_FOUND" }));
    hop.end();
    const [span] = exporter.getFinishedSpans();
    expect(span?.parentSpanContext?.spanId).toBe("b7ad6b7169203331");
    expect(span?.resource.attributes["service.name"]).toBe("power");
    expect(span?.attributes).toMatchObject({ "messaging.system": "nats", "messaging.destination.name": "iaas.cmd.power.off", "messaging.operation.type": "process", "error.type": "IAAS_NOT_FOUND" });
    expect(span?.status.message).toBe("IAAS_NOT_FOUND");
    expect(JSON.stringify(span?.attributes)).not.toContain("secret detail");
  });

  it("the resource: OTEL_RESOURCE_ATTRIBUTES (percent-decoded), service.name from OTEL_SERVICE_NAME over both", () => {
    expect(resourceAttributes("power", {})).toEqual({ "service.name": "power" });
    expect(resourceAttributes("power", { OTEL_RESOURCE_ATTRIBUTES: "deployment.environment.name=prod, service.namespace=iaas,team=a%2Cb" })).toEqual({
      "deployment.environment.name": "prod",
      "service.namespace": "iaas",
      team: "a,b",
      "service.name": "power",
    });
    expect(resourceAttributes("power", { OTEL_RESOURCE_ATTRIBUTES: "service.name=from-attrs" })["service.name"]).toBe("from-attrs");
    expect(resourceAttributes("power", { OTEL_RESOURCE_ATTRIBUTES: "service.name=from-attrs", OTEL_SERVICE_NAME: "power-eu" })["service.name"]).toBe("power-eu");
    expect(() => resourceAttributes("power", { OTEL_RESOURCE_ATTRIBUTES: "novalue" })).toThrow(/OTEL_RESOURCE_ATTRIBUTES/);
    expect(() => resourceAttributes("power", { OTEL_RESOURCE_ATTRIBUTES: "k=%E0%A4%A" })).toThrow(ConfigError);
  });

  it("a malformed or all-zero traceparent is no parent", () => {
    expect(trace.getSpanContext(contextOf("00-00000000000000000000000000000000-b7ad6b7169203331-01"))).toBeUndefined();
    expect(trace.getSpanContext(contextOf("garbage"))).toBeUndefined();
    expect(trace.getSpanContext(contextOf(PARENT))?.traceId).toBe("0af7651916cd43dd8448eb211c80319c");
  });
});
