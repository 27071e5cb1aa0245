import { z } from "zod";
import { BaseEnvSchema, PortSchema, natsAuthRefinement } from "@iaas/runtime";

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
  BRIDGE_BODY_LIMIT: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
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
  publishTimeoutMs: number;
  auth: BridgeAuth;
}

export function bridgeConfigFromEnv(env: BridgeEnv): BridgeConfig {
  return {
    host: env.BRIDGE_HOST,
    port: env.BRIDGE_PORT,
    bodyLimit: env.BRIDGE_BODY_LIMIT,
    publishTimeoutMs: env.BRIDGE_PUBLISH_TIMEOUT_MS,
    auth: {
      ...(env.BRIDGE_USERNAME !== undefined ? { username: env.BRIDGE_USERNAME, password: env.BRIDGE_PASSWORD } : {}),
      ...(env.BRIDGE_TOKEN !== undefined ? { token: env.BRIDGE_TOKEN } : {}),
    },
  };
}
