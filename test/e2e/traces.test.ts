/**
 * Traces: with a tracer provider set up as runService sets it up (here with an in-memory exporter
 * instead of OTLP), a `/iaas power off` is one trace from the gateway's Slack request to the SOAP
 * call vcenter-proxy makes to vCenter, each hop the child of the one before it, the NATS hops
 * described by OpenTelemetry's messaging conventions.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpanKind } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { startTracing, type Tracing } from "@iaas/runtime";
import { waitUntil } from "@iaas/testkit";
import { DEMO_VMS, startSystem, type System } from "./harness.js";

describe("traces, end to end", () => {
  let sys: System;
  let tracing: Tracing;
  const exporter = new InMemorySpanExporter();
  beforeAll(async () => {
    tracing = await startTracing("e2e", {}, { exporter });
    sys = await startSystem();
    await sys.adopt(DEMO_VMS, "U0001");
  });
  afterAll(async () => {
    await sys?.stop();
    await tracing?.shutdown();
  });

  const textOf = (b: Record<string, unknown>) => String(b.text ?? "");
  const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

  it("one trace: Slack request → publish → power's consume → request to the proxy → its handling → the vCenter SOAP call", async () => {
    expect(tracing.enabled).toBe(true);
    const r = await sys.slash("power off DC0_H0_VM0");
    await sys.slack.waitFor((calls) => calls.find((c) => c.path === new URL(r.responseUrl).pathname && /powered off/.test(textOf(c.body))));
    const id = /(r-[a-z0-9]+)/.exec(String((r.json as { text?: string }).text))![1]!;

    // The consumer span ends after the result is posted (state, audit, ack): wait for it.
    const spans = await waitUntil("power's consumer span has ended", () => {
      const all = exporter.getFinishedSpans();
      return all.some((s) => s.name === "process iaas.cmd.power.off" && s.kind === SpanKind.CONSUMER) && all;
    });
    const root = spans.find((s) => s.name === "slack.command" && s.attributes["iaas.request.id"] === id);
    expect(root, "the gateway's server span for the request").toBeDefined();
    expect(root!.kind).toBe(SpanKind.SERVER);
    expect(root!.instrumentationScope.name).toBe("gateway");
    expect(parentOf(root!)).toBeUndefined();
    const traceId = root!.spanContext().traceId;
    const inTrace = spans.filter((s) => s.spanContext().traceId === traceId);
    const childOf = (parent: ReadableSpan, pred: (s: ReadableSpan) => boolean) => {
      const c = inTrace.filter((s) => parentOf(s) === parent.spanContext().spanId && pred(s));
      expect(c, `one child of ${parent.name} matching`).toHaveLength(1);
      return c[0]!;
    };

    const publish = childOf(root!, (s) => s.kind === SpanKind.PRODUCER);
    expect(publish.name).toBe("publish iaas.cmd.power.off");
    expect(publish.instrumentationScope.name).toBe("gateway");
    expect(publish.attributes).toMatchObject({ "messaging.system": "nats", "messaging.destination.name": "iaas.cmd.power.off", "messaging.operation.type": "send", "messaging.operation.name": "publish", "messaging.message.id": id });

    const consume = childOf(publish, (s) => s.kind === SpanKind.CONSUMER);
    expect(consume.name).toBe("process iaas.cmd.power.off");
    expect(consume.instrumentationScope.name).toBe("power");
    expect(consume.attributes).toMatchObject({ "messaging.system": "nats", "messaging.destination.name": "iaas.cmd.power.off", "messaging.operation.type": "process", "messaging.consumer.group.name": "power" });

    // The guard's read of the VM, then the power call: the one to the power endpoint goes on.
    const requests = inTrace.filter((s) => parentOf(s) === consume.spanContext().spanId && s.kind === SpanKind.CLIENT);
    expect(requests.map((s) => s.name)).toContain("send vcenter.vm.power");
    const request = requests.find((s) => s.name === "send vcenter.vm.power")!;
    expect(request.instrumentationScope.name).toBe("@iaas/runtime");
    expect(request.attributes).toMatchObject({ "messaging.system": "nats", "messaging.destination.name": "vcenter.vm.power", "messaging.operation.type": "send", "messaging.operation.name": "request" });
    const subject = "vcenter.vm.power";

    const handled = childOf(request, (s) => s.kind === SpanKind.SERVER);
    expect(handled.name).toBe(`process ${subject}`);
    expect(handled.instrumentationScope.name).toBe("vcenter-proxy");
    expect(handled.attributes).toMatchObject({ "messaging.system": "nats", "messaging.destination.name": subject, "messaging.operation.type": "process" });

    const soap = childOf(handled, (s) => s.name === "PowerOffVM_Task");
    expect(soap.kind).toBe(SpanKind.CLIENT);
    expect(soap.instrumentationScope.name).toBe("@iaas/vsphere");
    const sim = new URL(sys.sim.url);
    expect(soap.attributes).toMatchObject({ "rpc.method": "PowerOffVM_Task", "server.address": sim.hostname, "server.port": Number(sim.port), "vsphere.object.type": "VirtualMachine" });

    // Nothing of a request body, a session or a credential on any span of the trace.
    const attrs = JSON.stringify(inTrace.map((s) => s.attributes));
    expect(attrs).not.toContain(sys.sim.password);
    expect(attrs).not.toContain("vmware_soap_session");
    expect(attrs).not.toContain("DC0_H0_VM0");
    // Every span of the trace is one of the request's: none is left without its parent in the trace.
    const ids = new Set(inTrace.map((s) => s.spanContext().spanId));
    for (const s of inTrace) if (s !== root) expect(ids.has(parentOf(s)!), `${s.name}'s parent is in the trace`).toBe(true);
  });

  it("the result published for the command carries the consumer span as its traceparent", async () => {
    const r = await sys.slash("power off DC0_H0_VM1");
    await sys.slack.waitFor((calls) => calls.find((c) => c.path === new URL(r.responseUrl).pathname && /powered off/.test(textOf(c.body))));
    const id = /(r-[a-z0-9]+)/.exec(String((r.json as { text?: string }).text))![1]!;
    const consume = await waitUntil("the consumer span of the second command", () => {
      const root = exporter.getFinishedSpans().find((s) => s.name === "slack.command" && s.attributes["iaas.request.id"] === id);
      return root && exporter.getFinishedSpans().find((s) => s.kind === SpanKind.CONSUMER && s.instrumentationScope.name === "power" && s.spanContext().traceId === root.spanContext().traceId);
    });
    const { jetstreamManager } = await import("@nats-io/jetstream");
    const res = await (await jetstreamManager(sys.nc)).streams.getMessage("IAAS_RESULTS", { last_by_subj: `iaas.result.${id}` });
    const sc = consume.spanContext();
    expect(res?.header.get("traceparent")).toBe(`00-${sc.traceId}-${sc.spanId}-01`);
    // The gateway's relay of that result to Slack is the consumer span's child: the trace goes on to the post.
    const relay = await waitUntil("the result relay's span", () =>
      exporter.getFinishedSpans().find((s) => s.kind === SpanKind.CONSUMER && s.instrumentationScope.name === "gateway" && s.attributes["messaging.destination.name"] === `iaas.result.${id}`),
    );
    expect(relay.name).toBe(`process iaas.result.${id}`);
    expect(relay.parentSpanContext?.spanId).toBe(sc.spanId);
    expect(relay.attributes["messaging.consumer.group.name"]).toBe("gateway-results");
  });
});
