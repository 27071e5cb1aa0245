import { z } from "zod";
import { VcenterIdSchema } from "@iaas/contracts";

/** A missing or invalid environment variable; the message names it. Never carries the value. */
export class ConfigError extends Error {
  constructor(readonly variables: string[], message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

export const PortSchema = z.coerce.number().int().min(0).max(65535);

/**
 * VCENTERS as the services beside vcenter-proxy read it (the same comma list as the proxy's: the
 * vCenters beside the default one, `lab,dr-site`), parsed to every vCenter id: `default` first.
 */
export const VcentersEnvSchema = z
  .string()
  .default("")
  .transform((v) => v.split(",").map((x) => x.trim()).filter(Boolean))
  .pipe(z.array(VcenterIdSchema.refine((id) => id !== "default", "\"default\" is always there (VCENTER_URL's)")))
  .refine((ids) => new Set(ids).size === ids.length, "an id is given twice")
  .transform((ids) => ["default", ...ids]);
const optionalNonEmpty = z
  .string()
  .optional()
  .transform((v) => (v === "" ? undefined : v));

/** Variables every service reads. */
export const BaseEnvSchema = z.object({
  NATS_URL: z.string().min(1).default("nats://127.0.0.1:4222"),
  NATS_USER: optionalNonEmpty,
  NATS_PASSWORD: optionalNonEmpty,
  NATS_CREDS: optionalNonEmpty,
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** Operator overrides for this service's JetStream consumer (applied at start; see docs/operations.md). */
  CONSUMER_ACK_WAIT_MS: z.coerce.number().int().min(1000).max(3_600_000).optional(),
  CONSUMER_MAX_DELIVER: z.coerce.number().int().min(1).max(100).optional(),
  /** Where /healthz, /readyz and /metrics listen; 0 picks a free port. */
  HEALTH_HOST: z.string().default("127.0.0.1"),
});
export type BaseEnv = z.infer<typeof BaseEnvSchema>;

/**
 * Parses the environment with `schema`. Throws a ConfigError whose message names each bad
 * variable and why, without echoing values (they may be secrets).
 */
export function loadConfig<S extends z.ZodType>(schema: S, env: Record<string, string | undefined> = process.env): z.infer<S> {
  const r = schema.safeParse(env);
  if (r.success) return r.data;
  const vars = [...new Set(r.error.issues.map((i) => String(i.path[0] ?? "?")))];
  const detail = r.error.issues
    .map((i) => {
      const name = String(i.path[0] ?? "?");
      const missing = i.code === "invalid_type" && env[name] === undefined;
      return `${name}: ${missing ? "is required" : i.message}`;
    })
    .join("; ");
  throw new ConfigError(vars, `invalid configuration: ${detail}`);
}

/** Rules shared by services: NATS credentials come as user+password or a creds file, not half of one. */
export function natsAuthRefinement(env: BaseEnv, ctx: z.RefinementCtx): void {
  if ((env.NATS_USER === undefined) !== (env.NATS_PASSWORD === undefined)) {
    ctx.addIssue({ code: "custom", path: [env.NATS_USER === undefined ? "NATS_USER" : "NATS_PASSWORD"], message: "NATS_USER and NATS_PASSWORD go together" });
  }
  if (env.NATS_CREDS !== undefined && env.NATS_USER !== undefined) {
    ctx.addIssue({ code: "custom", path: ["NATS_CREDS"], message: "set NATS_CREDS or NATS_USER/NATS_PASSWORD, not both" });
  }
}
