/**
 * A change deferred to a VM's next power-off is applied when iaas itself powers the VM off
 * (`/iaas power off`, `power shutdown`): remediation reads the command results, so it needs
 * neither vCenter's power-off event (VEBA may never send one; no poller runs here) nor the
 * periodic re-check (set to ten minutes here, so only the results can do it).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitUntil } from "@iaas/testkit";
import { REMEDIATION_ADMIN, startWorld, type World } from "./helpers.js";

const CPU = "VM CPU Usage";
// Demo inventory VMs without CPU hot-add.
const COLD = "DC0_H0_VM1";
const COLD2 = "DC0_C0_RP0_VM1";

describe("a deferred change after our own power-off", () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld({ power: true, pendingRecheckMs: 10 * 60_000 });
  });
  afterAll(async () => {
    await w?.close();
  });

  async function deferOne(vm: string): Promise<number> {
    const before = await w.vm(vm);
    expect(before.powerState).toBe("poweredOn");
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm(CPU, { type: "VirtualMachine", name: vm }));
    expect(await w.waitNotice("the deferral", (x) => x.cause === posted.eventId)).toMatchObject({ kind: "remediation.deferred", vm });
    expect((await w.vm(vm)).numCpu).toBe(before.numCpu);
    return before.numCpu;
  }

  it.each([
    ["power off", COLD],
    ["power shutdown", COLD2],
  ])("`/iaas %s` applies the +1 vCPU waiting for the power-off, with no power-off event", async (verb, vm) => {
    const cpus = await deferOne(vm);
    if (verb === "power shutdown") {
      // Guest shutdown needs VMware Tools running in the guest; the simulator says so when asked.
      const tools = await w.observer.retrieve([await w.moref(vm)], ["guest.toolsRunningStatus"]);
      expect(tools[0]!.props["guest.toolsRunningStatus"]).toBe("guestToolsRunning");
    }
    // The demo VMs have no owner: an IT admin powers them off.
    const ack = await w.slash(`${verb} ${vm}`, REMEDIATION_ADMIN);
    expect(ack.status).toBe(200);
    expect(JSON.stringify(ack.json)).not.toContain(":x:");
    // Polled with a deadline: the re-check is ten minutes away and no VEBA event comes.
    await waitUntil("the deferred vCPU on the VM", async () => {
      const now = await w.vm(vm);
      return now.powerState === "poweredOff" && now.numCpu === cpus + 1;
    }, 10_000);
    const applied = await w.waitNotice("the deferred change applied", (x) => x.kind === "remediation.action" && x.vm === vm);
    expect(applied).toMatchObject({ reason: "deferred-applied", change: { cpu: { from: cpus, to: cpus + 1 } } });
    await waitUntil("the change in Slack", () => w.slackPosts().some((p) => p.text.includes(applied.text)));
  });
});
