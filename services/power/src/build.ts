import { PowerCommandSchema } from "@iaas/contracts";
import type { Policy } from "@iaas/policy";
import { commandService, type CommandServiceDeps, type RunningCommandService } from "@iaas/runtime";
import { authorizePowerCommand } from "./guard.js";
import { runPower } from "./power.js";

export interface PowerServiceDeps extends CommandServiceDeps {
  /** The same policy the gateway enforces (IAAS_POLICY or the default, plus IAAS_ADMINS). */
  policy: Policy;
  config: { proxyTimeoutMs: number; concurrency: number };
}

/** The power service, not started: `start()` begins consuming `iaas.cmd.power.*`. */
export function buildPowerService(deps: PowerServiceDeps): RunningCommandService {
  const { nc, policy } = deps;
  return commandService(deps, {
    consumer: "power",
    schema: PowerCommandSchema,
    authorize: (cmd) => authorizePowerCommand({ nc, policy, lookupTimeoutMs: Math.min(deps.config.proxyTimeoutMs, 15_000) }, cmd),
    handle: (cmd, ctx) => runPower({ nc, proxyTimeoutMs: deps.config.proxyTimeoutMs }, cmd, ctx),
  });
}
