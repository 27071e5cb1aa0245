import { z } from "zod";
import { SlackUserIdSchema } from "@iaas/contracts";
import { BaseEnvSchema, ConfigError, PortSchema, VcentersEnvSchema, natsAuthRefinement } from "@iaas/runtime";
import type { Policy } from "@iaas/policy";

const optional = z
  .string()
  .optional()
  .transform((v) => (v === "" ? undefined : v));

/** `SLACK_API_URL`: the Web API base; a trailing slash is added because the WebClient appends the method name. */
const ApiUrl = z
  .string()
  .optional()
  .transform((v) => (v === "" ? undefined : v))
  .pipe(z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }).optional())
  .transform((v) => (v === undefined || v.endsWith("/") ? v : `${v}/`));

const AdminList = z
  .string()
  .default("")
  .transform((v) => v.split(",").map((s) => s.trim()).filter(Boolean))
  .pipe(z.array(SlackUserIdSchema));

export const GatewayEnvSchema = BaseEnvSchema.extend({
  /** Verifies every HTTP request from Slack; not used (and not needed) in Socket Mode. */
  SLACK_SIGNING_SECRET: z.string().min(1, "must not be empty").optional(),
  SLACK_BOT_TOKEN: optional,
  /**
   * When set, Slack reaches the gateway over Socket Mode instead of `POST /slack/events`. Only an
   * app-level token (`xapp-`) opens a connection; Slack answers any other kind with
   * `not_allowed_token_type`, which the Socket Mode client retries for ever instead of failing.
   */
  SLACK_APP_TOKEN: optional.pipe(z.string().startsWith("xapp-", "must be an app-level token (xapp-…)").optional()),
  SLACK_API_URL: ApiUrl,
  SLACK_NOTIFY_CHANNEL: optional,
  /** Where approval cards go (a rule's own `channel` first); SLACK_NOTIFY_CHANNEL when unset. */
  SLACK_APPROVALS_CHANNEL: optional,
  /**
   * How often each gateway replica sweeps the approvals bucket for reminders and expiries (and
   * approved commands a crashed replica did not publish). A reminder or an expiry is at most this
   * late.
   */
  APPROVALS_SWEEP_S: z.coerce.number().int().min(1).max(3600).default(5),
  /**
   * How often Slack user group membership is read again (usergroups.list, Slack's rate tier 2:
   * about 20 calls a minute), when the policy binds roles to groups.
   */
  SLACK_USERGROUPS_REFRESH_S: z.coerce.number().int().min(1).max(86_400).default(300),
  GATEWAY_PORT: PortSchema.default(3000),
  GATEWAY_HOST: z.string().min(1).default("0.0.0.0"),
  // Slack's own requests are a few kB (a slash command's text is at most 4,000 characters); 1 MiB
  // leaves room for large interactive payloads. Bodies are read before the signature can be checked,
  // so the total held at once is bounded too: past it a request gets 413 before its body is read.
  GATEWAY_BODY_LIMIT: z.coerce.number().int().min(16_384).max(16 * 1024 * 1024).default(1024 * 1024),
  GATEWAY_INFLIGHT_BYTES: z.coerce.number().int().min(16_384).max(256 * 1024 * 1024).default(8 * 1024 * 1024),
  HEALTH_PORT: PortSchema.default(9100),
  /** The policy file (YAML); the built-in default when unset. */
  IAAS_POLICY: optional,
  /** Slack user ids that hold the admin role (comma-separated). */
  IAAS_ADMINS: AdminList,
  /**
   * vcenter-proxy's VCENTERS (the vCenters beside the default one, `lab,dr-site`): the ids `vc=`
   * may name, besides `default`. With any, `list` asks every vCenter and quotas count VMs in all
   * of them. Parsed to every id, `default` first.
   */
  VCENTERS: VcentersEnvSchema,
}).superRefine((env, ctx) => {
  natsAuthRefinement(env, ctx);
  // Over HTTP every request is verified with it; Socket Mode's connection is opened with the app token instead.
  if (env.SLACK_SIGNING_SECRET === undefined && env.SLACK_APP_TOKEN === undefined) {
    ctx.addIssue({ code: "custom", path: ["SLACK_SIGNING_SECRET"], message: "is required (unless SLACK_APP_TOKEN is set, for Socket Mode)" });
  }
});

export type GatewayConfig = z.infer<typeof GatewayEnvSchema>;

/**
 * A policy whose approval rules name Slack user groups needs their members read (a bot token):
 * otherwise nobody in those groups could ever approve, and requests would wait for no one.
 */
export function checkApproverGroups(policy: Policy, config: Pick<GatewayConfig, "SLACK_BOT_TOKEN">): void {
  const groups = policy.approverGroups;
  if (groups.length === 0 || config.SLACK_BOT_TOKEN !== undefined) return;
  throw new ConfigError(
    ["SLACK_BOT_TOKEN"],
    `the policy's approval rules name Slack user groups as approvers (${groups.join(", ")}), but without SLACK_BOT_TOKEN the gateway cannot read who is in them`,
  );
}
