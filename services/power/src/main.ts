import { z } from "zod";
import { ServiceNames } from "@iaas/contracts";
import { loadPolicy } from "@iaas/policy";
import { BaseEnvSchema, PortSchema, ensureConsumer, ensureStreams, natsAuthRefinement, openBucket, runService } from "@iaas/runtime";
import { buildPowerService } from "./build.js";

const EnvSchema = BaseEnvSchema.extend({
  HEALTH_PORT: PortSchema.default(9102),
  POWER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(8),
  POWER_TIMEOUT_MS: z.coerce.number().int().min(1000).max(3_600_000).default(120_000),
}).superRefine(natsAuthRefinement);

await runService({
  name: ServiceNames.power,
  description: "Powers VMs on, off, reset, suspend, shutdown and reboot",
  env: EnvSchema,
  // IAAS_POLICY and IAAS_ADMINS; a policy that does not load stops the service with a line naming the field.
  prepare: (_env, log) => {
    const policy = loadPolicy({ env: process.env });
    log.info({ policy: policy.source }, "policy loaded");
    return policy;
  },
  async start({ env, prepared: policy, log, nc, jet, metrics }) {
    await ensureStreams(jet.jsm, ["commands", "results", "audit", "deadLetters"], log);
    await ensureConsumer(jet.jsm, "power", { ackWaitMs: env.CONSUMER_ACK_WAIT_MS, maxDeliver: env.CONSUMER_MAX_DELIVER });
    const state = await openBucket(nc, "commandState");
    const service = buildPowerService({ nc, jet, state, policy, log, metrics, config: { proxyTimeoutMs: env.POWER_TIMEOUT_MS, concurrency: env.POWER_CONCURRENCY } });
    await service.start();
    return service;
  },
});
