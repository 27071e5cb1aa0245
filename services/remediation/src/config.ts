import { z } from "zod";
import { parseVcenterSources } from "@iaas/contracts";
import { BaseEnvSchema, PortSchema, natsAuthRefinement } from "@iaas/runtime";
import { LOOKAHEAD_ENTRIES, type RemediationConfig } from "./build.js";

/** Remediation's environment (README.md lists every variable); what it may do is policy (IAAS_POLICY). */
export const RemediationEnvSchema = BaseEnvSchema.extend({
  HEALTH_PORT: PortSchema.default(9104),
  REMEDIATION_LOOKUP_TIMEOUT_MS: z.coerce.number().int().min(1000).max(300_000).default(30_000),
  REMEDIATION_TASK_TIMEOUT_MS: z.coerce.number().int().min(1000).max(3_600_000).default(600_000),
  REMEDIATION_PENDING_RECHECK_MS: z.coerce.number().int().min(1000).max(24 * 3_600_000).default(60_000),
  REMEDIATION_LOOKAHEAD_ENTRIES: z.coerce.number().int().min(100).max(10_000_000).default(LOOKAHEAD_ENTRIES),
  /** `id=source` pairs: which vCenter (a VCENTERS id or `default`) an event's CloudEvent source is; unset: all go to the default one. */
  VCENTER_SOURCES: z
    .string()
    .default("")
    .transform((v, ctx) => {
      try {
        return parseVcenterSources(v);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message });
        return z.NEVER;
      }
    }),
}).superRefine(natsAuthRefinement);
export type RemediationEnv = z.infer<typeof RemediationEnvSchema>;

export function remediationConfigFromEnv(env: RemediationEnv): RemediationConfig {
  return {
    lookupTimeoutMs: env.REMEDIATION_LOOKUP_TIMEOUT_MS,
    taskTimeoutMs: env.REMEDIATION_TASK_TIMEOUT_MS,
    pendingRecheckMs: env.REMEDIATION_PENDING_RECHECK_MS,
    lookaheadEntries: env.REMEDIATION_LOOKAHEAD_ENTRIES,
    vcenterSources: env.VCENTER_SOURCES,
  };
}
