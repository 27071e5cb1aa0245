import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSystem, type System, DEMO_VMS } from "./harness.js";
import { actor, natsId, now, publishCommand } from "./helpers.js";

/** The value of the sample `name` whose labels include `labels`, from Prometheus text; undefined if absent. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)\{(.*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...m[2]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

/** After commands have run, each service's /metrics text carries the metrics operators watch (docs/operations.md). */
describe("metrics after commands", () => {
  let sys: System;
  beforeAll(async () => {
    sys = await startSystem();
    // Unowned VMs are admin-only: the demo VMs become the requester's (U0001).
    await sys.adopt(DEMO_VMS, "U0001");
    const r = await sys.slash("power off DC0_H0_VM1");
    await sys.slack.waitFor((calls) => calls.find((c) => c.path === new URL(r.responseUrl).pathname && /powered off/.test(String(c.body.text))));
    // From Slack an unknown VM is refused at the door (the gateway's vm-get look-up); over NATS it reaches the power service.
    const bad = await sys.slash("power off no-such-vm");
    expect(String((bad.json as { text?: string }).text)).toMatch(/^:warning: No VM named `no-such-vm`/);
    expect(await publishCommand(sys, { id: natsId("metrics"), actor: actor("UADMIN1"), issuedAt: now(), area: "power", action: "off", vm: "no-such-vm" })).toMatchObject({ status: "failed", error: { code: "IAAS_VM_NOT_FOUND" } });
  });
  afterAll(async () => {
    await sys?.stop();
  });

  const text = (service: keyof System["metrics"]) => sys.metrics[service].registry.metrics();

  it("power: commands by verb and outcome, their latency, the JetStream backlog and redeliveries", async () => {
    // The service counts a command once its result is out, so the last count may follow the result by a moment.
    await expect.poll(async () => sample(await text("power"), "iaas_commands_total", { verb: "power.off", outcome: "failed", code: "IAAS_VM_NOT_FOUND" }), { timeout: 10_000 }).toBe(1);
    const t = await text("power");
    expect(sample(t, "iaas_commands_total", { verb: "power.off", outcome: "succeeded" })).toBe(1);
    expect(sample(t, "iaas_commands_total", { verb: "power.off", outcome: "failed", code: "IAAS_VM_NOT_FOUND" })).toBe(1);
    expect(sample(t, "iaas_command_duration_seconds_count", { verb: "power.off" })).toBe(2);
    expect(sample(t, "iaas_jetstream_pending_messages", { consumer: "power", kind: "pending" })).toBe(0);
    expect(sample(t, "iaas_jetstream_pending_messages", { consumer: "power", kind: "redelivered" })).toBe(0);
    expect(t).toContain("# TYPE iaas_jetstream_redeliveries_total counter");
  });

  it("vcenter-proxy: requests by endpoint and outcome, and how long vCenter took", async () => {
    const t = await text("vcenter-proxy");
    expect(sample(t, "iaas_vcenter_requests_total", { endpoint: "vm-power", outcome: "ok" })).toBe(1);
    // The power service reads the VM first (whose it is decides who may act): the unknown VM is
    // vm-get's not-found, and vm-power is never asked for it.
    expect(sample(t, "iaas_vcenter_requests_total", { endpoint: "vm-get", outcome: "IAAS_VM_NOT_FOUND" })).toBeGreaterThanOrEqual(1);
    expect(sample(t, "iaas_vcenter_requests_total", { endpoint: "vm-power", outcome: "IAAS_VM_NOT_FOUND" })).toBeUndefined();
    expect(sample(t, "iaas_vcenter_request_duration_seconds_count", { endpoint: "vm-power" })).toBe(1);
    // The live inventory index: answering look-ups, holding the simulator's VMs, built once.
    expect(sample(t, "iaas_vcenter_index_live", { vcenter: "default" })).toBe(1);
    expect(sample(t, "iaas_vcenter_index_vms", { vcenter: "default" })).toBeGreaterThanOrEqual(5);
    expect(sample(t, "iaas_vcenter_index_builds_total", { vcenter: "default" })).toBe(1);
    expect(t).toContain("# TYPE iaas_vcenter_index_builds_total counter");
    expect(sample(t, "iaas_vcenter_up", { vcenter: "default" })).toBe(1);
  });

  it("gateway: commands by verb and outcome, ack latency", async () => {
    const t = await text("gateway");
    expect(sample(t, "iaas_gateway_ack_seconds_count", { verb: "power.off" })).toBe(2);
    expect(t).toMatch(/^iaas_commands_total\{[^}]*verb="power\.off"/m);
  });
});
