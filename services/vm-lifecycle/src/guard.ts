import { IaasError, ProxyEndpoints, type VmCommand } from "@iaas/contracts";
import { NO_USAGE, commandIdOf, type Policy } from "@iaas/policy";
import { requestJson, type NatsConnection } from "@iaas/runtime";

export interface GuardDeps {
  nc: NatsConnection;
  policy: Policy;
  /** Timeout of the look-ups the guard makes (vm-get, vm-list): reads, so short. */
  lookupTimeoutMs: number;
}

/**
 * The policy, enforced where the work happens: the gateway checked the same rules before it
 * published, but a command may also arrive straight from NATS (an operator, a script), and it
 * must get the same answer. Runs in the consumer's `authorize` hook, before anything changes.
 *
 * - every command: the actor's roles grant it;
 * - create, clone, deploy: the naming rule, the size (create, deploy) and the owner's quota;
 * - delete: the VM is not protected (name and, resolved in vCenter, its folder) and is the
 *   actor's own unless the actor may delete any VM;
 * - resize: not protected, values within the policy's limits.
 */
export async function authorizeVmCommand(d: GuardDeps, cmd: VmCommand): Promise<void> {
  const { policy } = d;
  const actor = cmd.actor;
  const call = { timeoutMs: d.lookupTimeoutMs, requestId: cmd.id };
  switch (cmd.action) {
    case "create":
    case "deploy":
    case "clone": {
      policy.authorize(actor, commandIdOf("vm", cmd.action));
      policy.checkName(cmd.name);
      if (cmd.action !== "clone") policy.resolveSize(cmd.size);
      const { vms } = await requestJson(d.nc, ProxyEndpoints.vmList, { owner: actor.userId }, call);
      // A VM of the new name is either this command's own, made by an earlier delivery (the proxy
      // returns it instead of making another), or someone else's, which the proxy refuses as a
      // duplicate. Either way it must not count against the quota for this command.
      policy.checkQuota({ actor, request: { ...NO_USAGE, vms: 1 }, user: { ...NO_USAGE, vms: vms.filter((v) => v.name !== cmd.name).length } });
      return;
    }
    case "delete": {
      policy.authorize(actor, "delete");
      policy.checkProtected("delete", { name: cmd.vm });
      const vm = await lookup(d, cmd.vm, call);
      // Gone already: a redelivery whose first attempt deleted it, or a name that never existed.
      // Nothing can be deleted either way; the handler tells the two apart.
      if (!vm) return;
      policy.checkProtected("delete", { name: vm.name, path: vm.path });
      policy.authorizeOn(actor, "delete", vm);
      return;
    }
    case "owner":
      throw new IaasError("IAAS_NOT_SUPPORTED", "`owner` is not handled by this vm-lifecycle yet.");
    case "resize": {
      policy.authorize(actor, "resize");
      policy.checkProtected("resize", { name: cmd.vm });
      // Limits first: they need no look-up, and the answer is the same whatever the VM.
      policy.checkResize({ cpu: 1, memoryGB: 1 }, { cpu: cmd.cpu, memoryGB: cmd.memoryGB });
      // Not found or ambiguous: the proxy's own words (they name the path form to use).
      const { vm } = await requestJson(d.nc, ProxyEndpoints.vmGet, { vm: cmd.vm }, call);
      policy.checkProtected("resize", { name: vm.name, path: vm.path });
      return;
    }
  }
}

async function lookup(d: GuardDeps, vm: string, call: { timeoutMs: number; requestId: string }) {
  try {
    return (await requestJson(d.nc, ProxyEndpoints.vmGet, { vm }, call)).vm;
  } catch (err) {
    if (err instanceof IaasError && err.code === "IAAS_VM_NOT_FOUND") return undefined;
    throw err;
  }
}
