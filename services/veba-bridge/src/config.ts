import { z } from "zod";
import { BaseEnvSchema, PortSchema, natsAuthRefinement } from "@iaas/runtime";
import type { JsonLimits } from "./limits.js";

/**
 * Memory bounds. A vCenter event is 1-5 kB, nests at most 7 levels and holds 25-140 values (objects,
 * arrays, members); a full 1 MiB batch of them about 45,000. The hostile shape (`{},` repeated) is
 * a value every 3 bytes: 290,000 in 870 kB, tens of MB of heap once parsed.
 */
export const BridgeDefaults = {
  bodyLimit: 1024 * 1024,
  /** Request bodies held at once, all requests together: eight full-size bodies. */
  inflightBytes: 8 * 1024 * 1024,
  json: { maxDepth: 32, maxValues: 100_000 } satisfies JsonLimits,
} as const;

const optionalSecret = z
  .string()
  .optional()
  .transform((v) => (v === "" ? undefined : v));

/** The bridge's environment (README.md lists every variable). */
export const BridgeEnvSchema = BaseEnvSchema.extend({
  HEALTH_PORT: PortSchema.default(9105),
  BRIDGE_PORT: PortSchema.default(8080),
  BRIDGE_HOST: z.string().min(1).default("0.0.0.0"),
  /** Largest request body in bytes (a batch counts whole). */
  BRIDGE_BODY_LIMIT: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(BridgeDefaults.bodyLimit),
  /** Request-body bytes held at once across all requests; a request that does not fit gets 503 + Retry-After. */
  BRIDGE_INFLIGHT_BYTES: z.coerce.number().int().min(1024).max(1024 * 1024 * 1024).default(BridgeDefaults.inflightBytes),
  /** Deepest JSON nesting accepted in a body (checked before parsing). */
  BRIDGE_JSON_MAX_DEPTH: z.coerce.number().int().min(8).max(1000).default(BridgeDefaults.json.maxDepth),
  /** Most JSON objects, arrays and members/elements in a body (checked before parsing). */
  BRIDGE_JSON_MAX_VALUES: z.coerce.number().int().min(1000).max(10_000_000).default(BridgeDefaults.json.maxValues),
  /** `none` accepts events without credentials; otherwise BRIDGE_TOKEN or BRIDGE_USERNAME/BRIDGE_PASSWORD must be set. */
  BRIDGE_AUTH: z.enum(["required", "none"]).default("required"),
  /** How long to wait for JetStream to acknowledge one event before answering 503. */
  BRIDGE_PUBLISH_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(5_000),
  BRIDGE_USERNAME: optionalSecret,
  BRIDGE_PASSWORD: optionalSecret,
  BRIDGE_TOKEN: optionalSecret,
}).superRefine((env, ctx) => {
  natsAuthRefinement(env, ctx);
  if ((env.BRIDGE_USERNAME === undefined) !== (env.BRIDGE_PASSWORD === undefined)) {
    ctx.addIssue({ code: "custom", path: [env.BRIDGE_USERNAME === undefined ? "BRIDGE_USERNAME" : "BRIDGE_PASSWORD"], message: "BRIDGE_USERNAME and BRIDGE_PASSWORD go together" });
  }
  const credentials = env.BRIDGE_TOKEN !== undefined || env.BRIDGE_USERNAME !== undefined;
  if (env.BRIDGE_AUTH === "required" && !credentials) {
    // Anyone who can reach the port could otherwise feed remediation alarms of their own making.
    ctx.addIssue({ code: "custom", path: ["BRIDGE_TOKEN"], message: "is required (or BRIDGE_USERNAME and BRIDGE_PASSWORD): set one, or BRIDGE_AUTH=none to accept events without credentials" });
  }
  if (env.BRIDGE_AUTH === "none" && credentials) {
    ctx.addIssue({ code: "custom", path: ["BRIDGE_AUTH"], message: "is none, but credentials are set: unset BRIDGE_AUTH to require them, or unset them" });
  }
  if (env.BRIDGE_INFLIGHT_BYTES < env.BRIDGE_BODY_LIMIT) {
    ctx.addIssue({ code: "custom", path: ["BRIDGE_INFLIGHT_BYTES"], message: `must be at least BRIDGE_BODY_LIMIT (${env.BRIDGE_BODY_LIMIT}), or a body of the largest size could never be taken` });
  }
  if (env.BRIDGE_USERNAME?.includes(":")) {
    // Basic auth sends `user:password`; a colon in the user name could never match.
    ctx.addIssue({ code: "custom", path: ["BRIDGE_USERNAME"], message: "must not contain ':'" });
  }
});
export type BridgeEnv = z.infer<typeof BridgeEnvSchema>;

export interface BridgeAuth {
  /** Basic auth, when both are set. */
  username?: string;
  password?: string;
  /** Bearer token. With both basic and bearer set, either is accepted. */
  token?: string;
}

export interface BridgeConfig {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  bodyLimit: number;
  /** Request-body bytes held at once across requests (BridgeDefaults.inflightBytes when unset). */
  inflightBytes?: number;
  /** JSON shape limits checked before parsing (BridgeDefaults.json when unset). */
  json?: Partial<JsonLimits>;
  publishTimeoutMs: number;
  auth: BridgeAuth;
}

export function bridgeConfigFromEnv(env: BridgeEnv): BridgeConfig {
  return {
    host: env.BRIDGE_HOST,
    port: env.BRIDGE_PORT,
    bodyLimit: env.BRIDGE_BODY_LIMIT,
    inflightBytes: env.BRIDGE_INFLIGHT_BYTES,
    json: { maxDepth: env.BRIDGE_JSON_MAX_DEPTH, maxValues: env.BRIDGE_JSON_MAX_VALUES },
    publishTimeoutMs: env.BRIDGE_PUBLISH_TIMEOUT_MS,
    auth: {
      ...(env.BRIDGE_USERNAME !== undefined ? { username: env.BRIDGE_USERNAME, password: env.BRIDGE_PASSWORD } : {}),
      ...(env.BRIDGE_TOKEN !== undefined ? { token: env.BRIDGE_TOKEN } : {}),
    },
  };
}
