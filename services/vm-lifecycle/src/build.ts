import { VmCommandSchema } from "@iaas/contracts";
import type { Policy } from "@iaas/policy";
import { commandService, type CommandServiceDeps, type RunningCommandService } from "@iaas/runtime";
import { authorizeVmCommand } from "./guard.js";
import { runVmCommand } from "./lifecycle.js";

export interface VmLifecycleDeps extends CommandServiceDeps {
  /** The same policy the gateway enforces (IAAS_POLICY or the default, plus IAAS_ADMINS). */
  policy: Policy;
  config: {
    /** Deadline of one vCenter task (create, clone, delete, reconfigure). */
    taskTimeoutMs: number;
    /** Deadline of a read (vm-get, vm-list) made by the policy checks. */
    lookupTimeoutMs: number;
    concurrency: number;
  };
}

/** vm-lifecycle, not started: `start()` begins consuming `iaas.cmd.vm.*`. */
export function buildVmLifecycleService(deps: VmLifecycleDeps): RunningCommandService {
  const { nc, policy } = deps;
  return commandService(deps, {
    consumer: "vmLifecycle",
    schema: VmCommandSchema,
    authorize: (cmd) => authorizeVmCommand({ nc, policy, lookupTimeoutMs: deps.config.lookupTimeoutMs }, cmd),
    handle: (cmd, ctx) => runVmCommand({ nc, policy, taskTimeoutMs: deps.config.taskTimeoutMs }, cmd, ctx),
  });
}
