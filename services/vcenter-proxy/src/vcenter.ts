import { IaasError, type PowerAction, type VmSummary } from "@iaas/contracts";
import { VimClient, VirtualMachine, inventoryPath, readVmSummaries, type MoRef, type VmSummary as VimVmSummary } from "@iaas/vsphere";
import type { Logger } from "@iaas/runtime";
import { toIaasError } from "./faults.js";
import { waitForValue } from "./wait.js";

const ACTION_WORDS: Record<PowerAction, string> = {
  on: "power on",
  off: "power off",
  reset: "reset",
  suspend: "suspend",
  shutdown: "shut down",
  reboot: "reboot",
};

/** Extra-config key that records the Slack user who made a VM through the product. */
export const OWNER_KEY = "iaas.owner";

export interface FoundVm {
  ref: MoRef;
  name: string;
}

/**
 * One vCenter, as the product sees it: VMs found by exact name or inventory path, power actions
 * that wait for their task and read the result back. Every vSphere failure leaves as an IaasError.
 */
export class Vcenter {
  constructor(
    readonly id: string,
    readonly client: VimClient,
    private readonly log: Logger,
  ) {}

  /**
   * `<vm>` is an exact name or an inventory path beginning with `/`. Names are matched exactly,
   * case and all; two VMs with the same name (in different folders) are an error listing both paths.
   */
  async findVm(vm: string): Promise<FoundVm> {
    try {
      if (vm.startsWith("/")) {
        const ref = await this.client.searchIndex.findByInventoryPath(vm);
        if (!ref || ref.type !== "VirtualMachine") throw new IaasError("IAAS_VM_NOT_FOUND", `No VM at \`${vm}\`. Check the path with \`/iaas list\`.`);
        const [s] = await this.client.retrieve([ref], ["name"]);
        return { ref, name: String(s?.props.name ?? vm) };
      }
      const all = await this.client.retrieveContainer("VirtualMachine", ["name"]);
      const hits = all.filter((o) => o.props.name === vm);
      if (hits.length === 0) throw new IaasError("IAAS_VM_NOT_FOUND", `No VM named \`${vm}\`. Names are exact and case-sensitive; see \`/iaas list\`.`);
      if (hits.length > 1) {
        const paths = await Promise.all(hits.map((h) => inventoryPath(this.client, h.obj)));
        throw new IaasError("IAAS_VM_AMBIGUOUS", `${hits.length} VMs are named \`${vm}\`: ${paths.map((p) => `\`${p}\``).join(", ")}. Use the path.`);
      }
      return { ref: hits[0]!.obj, name: vm };
    } catch (err) {
      throw toIaasError(err, { vm, action: "find the VM" });
    }
  }

  async summary(ref: MoRef, withPath = true): Promise<VmSummary> {
    const [s] = await readVmSummaries(this.client, [ref]);
    if (!s) throw new IaasError("IAAS_NOT_FOUND", "The VM no longer exists in vCenter.");
    const path = withPath ? await inventoryPath(this.client, ref).catch(() => undefined) : undefined;
    return toContractSummary(s, path);
  }

  async getVm(vm: string): Promise<VmSummary> {
    const found = await this.findVm(vm);
    try {
      return await this.summary(found.ref);
    } catch (err) {
      throw toIaasError(err, { vm: found.name });
    }
  }

  /**
   * Runs a power action and returns the VM as it is afterwards. Checks vCenter would make on a
   * real host but the simulator skips are made here (suspend of a powered-off VM, guest operations
   * without VMware Tools), so users see the same answer on both.
   */
  async power(vm: string, action: PowerAction, timeoutMs: number): Promise<VmSummary> {
    const found = await this.findVm(vm);
    const ctx = { vm: found.name, action: ACTION_WORDS[action] };
    try {
      const vmo = new VirtualMachine(this.client, found.ref);
      const before = await vmo.summary();
      if (before.template) throw new IaasError("IAAS_INVALID_STATE", `\`${found.name}\` is a template; deploy it to get a VM you can power on.`);
      const deadline = { timeoutMs };
      switch (action) {
        case "on":
          await (await vmo.powerOn()).wait(deadline);
          break;
        case "off":
          await (await vmo.powerOff()).wait(deadline);
          break;
        case "reset":
          await (await vmo.reset()).wait(deadline);
          break;
        case "suspend":
          if (before.powerState !== "poweredOn") throw new IaasError("IAAS_INVALID_POWER_STATE", `Cannot suspend: \`${found.name}\` is ${words(before.powerState)}.`);
          await (await vmo.suspend()).wait(deadline);
          break;
        case "shutdown":
        case "reboot":
          if (before.powerState !== "poweredOn") throw new IaasError("IAAS_INVALID_POWER_STATE", `Cannot ${ctx.action}: \`${found.name}\` is ${words(before.powerState)}.`);
          if (before.toolsRunningStatus !== "guestToolsRunning") {
            throw new IaasError("IAAS_TOOLS_UNAVAILABLE", `Cannot ${ctx.action} \`${found.name}\`: VMware Tools is not running in it. Use \`power ${action === "shutdown" ? "off" : "reset"}\` instead.`);
          }
          if (action === "shutdown") {
            await vmo.shutdownGuest();
            // ShutdownGuest returns once the guest was asked; success means the VM is off.
            await waitForValue(this.client, found.ref, "runtime.powerState", (v) => v === "poweredOff", timeoutMs);
          } else {
            // Never fall back to a hard reset: a reboot through Tools or a clear "not supported".
            await vmo.rebootGuest();
          }
          break;
      }
      return await this.summary(found.ref);
    } catch (err) {
      throw toIaasError(err, ctx);
    }
  }
}

function words(state: string): string {
  return state === "poweredOn" ? "powered on" : state === "poweredOff" ? "powered off" : state;
}

export function toContractSummary(s: VimVmSummary, path?: string): VmSummary {
  return {
    name: s.name,
    ...(path ? { path } : {}),
    moref: s.ref.value,
    powerState: s.powerState,
    numCpu: s.numCPU ?? 0,
    memoryMB: s.memoryMB ?? 0,
    template: s.template,
  };
}
