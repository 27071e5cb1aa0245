import { IaasError, PowerStateAfter, ProxyEndpoints, describeVm, quote, type PowerAction, type PowerCommand, type VmSummary } from "@iaas/contracts";
import { inVcenter, requestJson, type CommandContext, type CommandOutcome, type NatsConnection } from "@iaas/runtime";

const DONE: Record<PowerAction, string> = {
  on: "is powered on",
  off: "is powered off",
  suspend: "is suspended",
  shutdown: "was shut down through VMware Tools",
  reset: "was reset",
  reboot: "is rebooting through VMware Tools",
};

/** The outcome of a finished action: the facts, and the same in plain text. */
function outcome(cmd: PowerCommand, vm: VmSummary, code: "done" | "already-done"): CommandOutcome {
  return { message: `${quote(vm.name)} ${DONE[cmd.action]} (${describeVm(vm)}).`, facts: { code, vm: vm.name, ...inVcenter(cmd.vcenter) }, vm };
}

export interface PowerDeps {
  nc: NatsConnection;
  /** How long the proxy may take for one power operation (it waits for the vCenter task). */
  proxyTimeoutMs: number;
}

/**
 * Runs one power command against vcenter-proxy. On a resumed delivery (an earlier attempt
 * started and was cut off), the VM is read first: a VM already in the target state counts as
 * done, and reset/reboot are not repeated blindly, since doing them twice is not harmless.
 */
export async function runPower(deps: PowerDeps, cmd: PowerCommand, ctx: CommandContext): Promise<CommandOutcome> {
  const call = { timeoutMs: deps.proxyTimeoutMs, requestId: cmd.id, traceparent: ctx.traceparent };
  if (ctx.resumed) {
    const { vm } = await requestJson(deps.nc, ProxyEndpoints.vmGet, { vm: cmd.vm, ...inVcenter(cmd.vcenter) }, call);
    const target = PowerStateAfter[cmd.action];
    if (target && vm.powerState === target) {
      ctx.log.info("resumed command: the VM is already in the target state");
      return outcome(cmd, vm, "already-done");
    }
    if (!target) throw new IaasError("IAAS_INTERRUPTED", `An earlier attempt to ${cmd.action} ${quote(vm.name)} was interrupted, so it is not repeated automatically; check the VM and run the command again if needed.`);
  }
  // Timeout for the NATS request: a little longer than the proxy's own task deadline.
  const { vm } = await requestJson(deps.nc, ProxyEndpoints.vmPower, { vm: cmd.vm, ...inVcenter(cmd.vcenter), action: cmd.action, timeoutMs: deps.proxyTimeoutMs }, { ...call, timeoutMs: deps.proxyTimeoutMs + 5_000 });
  return outcome(cmd, vm, "done");
}
