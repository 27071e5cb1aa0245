/**
 * An operator reading `iaas.result.<id>` over NATS gets the outcome as facts (what was done, to
 * which VM, with which size or source) and a plain-text `message` with no Slack markup.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSystem, type System, DEMO_VMS } from "./harness.js";
import { actor, natsId, now, publishCommand } from "./helpers.js";

describe("results carry facts", () => {
  let sys: System;
  beforeAll(async () => {
    sys = await startSystem();
    // Unowned VMs are admin-only: the demo VMs become the requester's (U0001).
    await sys.adopt(DEMO_VMS, "U0001");
  });
  afterAll(async () => {
    await sys?.stop();
  });

  it("power: the code and the VM; the message in plain text", async () => {
    const r = await publishCommand(sys, { id: natsId("facts-power"), actor: actor("U0001"), issuedAt: now(), area: "power", action: "off", vm: "DC0_H0_VM1" });
    expect(r).toMatchObject({ status: "succeeded", command: "power.off", facts: { code: "done", vm: "DC0_H0_VM1" }, vm: { name: "DC0_H0_VM1", powerState: "poweredOff" } });
    if (r.status !== "succeeded") throw new Error("unreachable");
    expect(r.message).toMatch(/^`DC0_H0_VM1` is powered off \(\d+ vCPU, \d+(\.\d+)? [GM]B memory, powered off\)\.$/);
  });

  it("create: the size it used; resize to what the VM has: unchanged", async () => {
    const made = await publishCommand(sys, { id: natsId("facts-create"), actor: actor("U0001"), issuedAt: now(), area: "vm", action: "create", name: "facts-01" });
    expect(made).toMatchObject({ status: "succeeded", command: "vm.create", facts: { code: "done", vm: "facts-01", size: { name: expect.any(String), cpu: expect.any(Number), memoryMB: expect.any(Number) } } });
    if (made.status !== "succeeded") throw new Error("unreachable");
    const again = await publishCommand(sys, { id: natsId("facts-resize"), actor: actor("U0001"), issuedAt: now(), area: "vm", action: "resize", vm: "facts-01", cpu: made.vm!.numCpu });
    expect(again).toMatchObject({ status: "succeeded", command: "vm.resize", facts: { code: "unchanged", vm: "facts-01" } });
  });
});
