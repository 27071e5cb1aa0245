import { z } from "zod";
import { ServiceNames } from "@iaas/contracts";
import { loadPolicy } from "@iaas/policy";
import { BaseEnvSchema, PortSchema, natsAuthRefinement, runCommandService } from "@iaas/runtime";
import { buildPowerService } from "./build.js";

const EnvSchema = BaseEnvSchema.extend({
  HEALTH_PORT: PortSchema.default(9102),
  POWER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(8),
  POWER_TIMEOUT_MS: z.coerce.number().int().min(1000).max(3_600_000).default(120_000),
}).superRefine(natsAuthRefinement);

await runCommandService({
  name: ServiceNames.power,
  description: "Powers VMs on, off, reset, suspend, shutdown and reboot",
  env: EnvSchema,
  consumer: "power",
  // IAAS_POLICY and IAAS_ADMINS; a policy that does not load stops the service with a line naming the field.
  prepare: (_env, log) => {
    const policy = loadPolicy({ env: process.env });
    log.info({ policy: policy.source }, "policy loaded");
    return policy;
  },
  build: ({ env, prepared: policy, log, nc, jet, metrics, state }) =>
    buildPowerService({ nc, jet, state, policy, log, metrics, config: { proxyTimeoutMs: env.POWER_TIMEOUT_MS, concurrency: env.POWER_CONCURRENCY } }),
});
