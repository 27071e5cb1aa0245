import { ProxyEndpoints, type PowerCommand } from "@iaas/contracts";
import { PROTECTED_COMMANDS, commandIdOf, type Policy } from "@iaas/policy";
import { requestJson, type NatsConnection } from "@iaas/runtime";

export interface PowerGuardDeps {
  nc: NatsConnection;
  policy: Policy;
  lookupTimeoutMs: number;
}

/**
 * The policy, checked again where the work happens (the gateway checked it before publishing),
 * so a power command published straight to NATS meets the same rules: the actor's roles grant
 * the action, and no protected VM is powered off, reset, suspended, shut down or rebooted. The
 * name is checked first; then, where the policy protects folders, the VM is resolved in vCenter so
 * folder protection holds too.
 */
export async function authorizePowerCommand(d: PowerGuardDeps, cmd: PowerCommand): Promise<void> {
  const id = commandIdOf("power", cmd.action);
  d.policy.authorize(cmd.actor, id);
  if (!PROTECTED_COMMANDS.includes(id)) return;
  d.policy.checkProtected(id, { name: cmd.vm });
  // The name (or a path's last element) is checked above; without protected folders the VM's
  // place in vCenter changes nothing, so there is nothing to look up.
  if (!d.policy.protectsFolders) return;
  const { vm } = await requestJson(d.nc, ProxyEndpoints.vmGet, { vm: cmd.vm }, { timeoutMs: d.lookupTimeoutMs, requestId: cmd.id });
  d.policy.checkProtected(id, { name: vm.name, path: vm.path });
}
