import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream } from "@nats-io/jetstream";
import { Streams } from "@iaas/contracts";
import { listVmSummaries } from "@iaas/vsphere";
import { postSigned, slashCommandBody } from "@iaas/testkit";
import { startSystem, SIGNING_SECRET, type System, DEMO_VMS } from "./harness.js";
import { jetstreamManager } from "@nats-io/jetstream";

/** The walking skeleton, end to end: signed Slack request → gateway → JetStream → power → vcenter-proxy → simulator → result → response_url. */
describe("/iaas power, end to end", () => {
  let sys: System;
  beforeAll(async () => {
    sys = await startSystem();
    // Unowned VMs are admin-only: the demo VMs become the requester's (U0001).
    await sys.adopt(DEMO_VMS, "U0001");
  });
  afterAll(async () => {
    await sys?.stop();
  });

  const stateOf = async (name: string) => (await listVmSummaries(sys.observer)).find((v) => v.name === name)?.powerState;
  const textOf = (b: Record<string, unknown>) => String(b.text ?? "");
  const commandsInStream = async () => (await (await jetstreamManager(sys.nc)).streams.info(Streams.commands.name)).state.messages;

  it("powers a VM off: 200 ack with the request id, the VM is off in vCenter, one success post naming the VM", async () => {
    expect(await stateOf("DC0_H0_VM0")).toBe("poweredOn");
    const r = await sys.slash("power off DC0_H0_VM0");
    expect(r.status).toBe(200);
    const ack = (r.json as { text?: string }).text ?? r.body;
    const id = /`(r-[A-Za-z0-9_-]+)`/.exec(ack)?.[1] ?? /(r-[a-z0-9]+)/.exec(ack)?.[1];
    expect(id, `ack names the request id: ${ack}`).toBeTruthy();
    const posts = await sys.slack.waitFor((calls) => {
      const p = calls.filter((c) => c.method === "response_url" && c.path === new URL(r.responseUrl).pathname);
      return p.some((c) => /powered off/.test(textOf(c.body))) && p;
    });
    const finals = posts.filter((p) => /powered off/.test(textOf(p.body)));
    expect(finals).toHaveLength(1);
    expect(textOf(finals[0]!.body)).toContain("DC0_H0_VM0");
    expect(await stateOf("DC0_H0_VM0")).toBe("poweredOff");
    void jetstream;
  });

  it("powering on a VM that is already on gives one clear failure line, not a stack trace", async () => {
    const r = await sys.slash("power on DC0_H0_VM1");
    expect(r.status).toBe(200);
    const post = await sys.slack.waitFor((calls) => calls.find((c) => c.path === new URL(r.responseUrl).pathname && /already powered on/.test(textOf(c.body))));
    const text = textOf(post.body);
    expect(text).toContain("Cannot power on: `DC0_H0_VM1` is already powered on.");
    expect(text).toMatch(/r-[A-Za-z0-9_-]+/);
    expect(text).not.toMatch(/at .*\.ts:\d+|Error:/);
  });

  it("a VM that does not exist gives a clear refusal in the ack", async () => {
    const r = await sys.slash("power off no-such-vm");
    expect(textOf(r.json as Record<string, unknown>)).toMatch(/^:warning: No VM named `no-such-vm`\. Names are exact and case-sensitive; see `\/iaas list`\. \(request `r-/);
  });

  it("one W3C trace runs from the Slack request through the command to its result", async () => {
    const r = await sys.slash("power off DC0_C0_RP0_VM1");
    await sys.slack.waitFor((calls) => calls.find((c) => c.path === new URL(r.responseUrl).pathname && /powered off/.test(textOf(c.body))));
    const id = /(r-[a-z0-9]+)/.exec(String((r.json as { text?: string }).text))![1]!;
    const jsm = await jetstreamManager(sys.nc);
    const cmd = await jsm.streams.getMessage(Streams.commands.name, { last_by_subj: "iaas.cmd.power.off" });
    const res = await jsm.streams.getMessage(Streams.results.name, { last_by_subj: `iaas.result.${id}` });
    const trace = (tp: string | undefined) => /^00-([0-9a-f]{32})-[0-9a-f]{16}-01$/.exec(tp ?? "")?.[1];
    expect(trace(cmd?.header.get("traceparent"))).toBeTruthy();
    expect(trace(res?.header.get("traceparent"))).toBe(trace(cmd?.header.get("traceparent")));
    // A child span, not the same one.
    expect(res?.header.get("traceparent")).not.toBe(cmd?.header.get("traceparent"));
  });

  it("bad signature, stale timestamp and missing headers get 401 and publish nothing", async () => {
    const before = await commandsInStream();
    const body = slashCommandBody({ text: "power off DC0_H0_VM1", response_url: sys.slack.responseUrl() });
    expect((await postSigned(sys.gatewayUrl, body, { secret: "wrong-secret" })).status).toBe(401);
    expect((await postSigned(sys.gatewayUrl, body, { secret: SIGNING_SECRET, timestamp: Math.floor(Date.now() / 1000) - 6 * 60 })).status).toBe(401);
    expect((await postSigned(sys.gatewayUrl, body, { secret: SIGNING_SECRET, unsigned: true })).status).toBe(401);
    expect(await commandsInStream()).toBe(before);
    expect(await stateOf("DC0_H0_VM1")).toBe("poweredOn");
  });

  it("an unknown verb points to help; nothing is routed by substring", async () => {
    const before = await commandsInStream();
    for (const text of ["poweroff DC0_H0_VM1", "pow off DC0_H0_VM1", "reboot DC0_H0_VM1"]) {
      const r = await sys.slash(text);
      expect(r.status).toBe(200);
      expect(r.body).toContain("/iaas help");
    }
    expect(await commandsInStream()).toBe(before);
  });
});
