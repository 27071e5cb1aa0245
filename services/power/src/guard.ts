import type { PowerCommand } from "@iaas/contracts";
import { commandIdOf, type Policy } from "@iaas/policy";
import { readVmForGuard, type NatsConnection } from "@iaas/runtime";

export interface PowerGuardDeps {
  nc: NatsConnection;
  policy: Policy;
  lookupTimeoutMs: number;
}

/**
 * The policy, checked again where the work happens (the gateway checked it before publishing),
 * so a power command published straight to NATS meets the same rules: the actor's roles grant
 * the action on this VM (its owner and team, read from vCenter: an unowned VM is admin-only), and
 * no protected VM is powered off, reset, suspended, shut down or rebooted. The name is checked
 * before anything is read; the folder once the VM is resolved, and a path that could not be read
 * refuses where the policy protects folders (a guard that cannot decide fails closed). The VM is
 * the one in the command's vCenter.
 */
export async function authorizePowerCommand(d: PowerGuardDeps, cmd: PowerCommand): Promise<void> {
  const id = commandIdOf("power", cmd.action);
  const via = cmd.actor.via;
  d.policy.authorize(cmd.actor, id);
  d.policy.checkProtected(id, { name: cmd.vm }, { via });
  const vm = await readVmForGuard(d.nc, cmd.vm, { timeoutMs: d.lookupTimeoutMs, requestId: cmd.id }, cmd.vcenter);
  d.policy.authorizeOn(cmd.actor, id, vm);
  d.policy.checkProtected(id, { name: vm.name, path: vm.path }, { via, resolved: true });
}
