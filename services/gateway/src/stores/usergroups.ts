import { z } from "zod";
import type { Policy } from "@iaas/policy";
import type { Logger } from "@iaas/runtime";
import type { GatewayMetrics } from "../metrics.js";

/**
 * The part of `usergroups.list` (with `include_users`) the gateway reads. Not strict: Slack adds
 * fields. https://api.slack.com/methods/usergroups.list
 */
const UsergroupsListSchema = z.object({
  ok: z.literal(true),
  usergroups: z.array(
    z.object({
      id: z.string(),
      /** Non-zero once the group is disabled; Slack leaves those out unless `include_disabled`, this is the belt to those braces. */
      date_delete: z.number().optional(),
      users: z.array(z.string()).optional(),
    }),
  ),
});

/** One `usergroups.list` call, retries included (the WebClient's own timeout is 5 s per attempt). */
export const USERGROUPS_TIMEOUT_MS = 10_000;
/** ActorSchema.groups allows at most this many. */
export const MAX_ACTOR_GROUPS = 100;

export interface UserGroupsDeps {
  /**
   * `usergroups.list` with `include_users=true`, `include_disabled=false` through the gateway's
   * Slack Web API client (the bot token, SLACK_API_URL); undefined without SLACK_BOT_TOKEN.
   */
  list: (() => Promise<unknown>) | undefined;
  policy: Policy;
  log: Logger;
  metrics: GatewayMetrics;
  /** How often the membership is read again (SLACK_USERGROUPS_REFRESH_S). */
  refreshMs: number;
  timeoutMs?: number;
}

/**
 * Which Slack user groups each Slack user is in, read from Slack in the background and never on
 * the ack path: every answer is a map look-up. One `usergroups.list` call answers every group
 * with its members, so the whole workspace's membership is kept: the groups the policy names
 * (roles, teams, team quotas) are what an actor carries, and any other group can still be a VM's
 * team (`team=@platform`), which the gateway asks about when it meets it. Membership is read
 * whenever there is a bot token (a VM's team may be any group); without one, nothing is read.
 *
 * Fails closed: until a refresh succeeds, nobody is known to be in a group, so no group binding
 * and no group team applies from Slack. A refresh that fails keeps the last good map (a Slack
 * outage must not take everyone's roles away, and a membership change is at most one refresh
 * late either way).
 *
 * An actor carries only the policy's groups, in policy order (plus the team of the VM it acts on):
 * the rest cannot change a role, and this keeps an actor's list within ActorSchema's 100 unless
 * the policy itself names more.
 */
export class UserGroups {
  private members = new Map<string, readonly string[]>();
  /** Every enabled group's members, by group id. */
  private byGroup = new Map<string, ReadonlySet<string>>();
  private loaded = false;
  private failures = 0;
  private missing = "";
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly wanted: ReadonlySet<string>;
  private readonly order: ReadonlyMap<string, number>;
  private readonly log: Logger;

  constructor(private readonly d: UserGroupsDeps) {
    this.wanted = new Set(d.policy.namedGroups);
    this.order = new Map(d.policy.namedGroups.map((g, i) => [g, i]));
    this.log = d.log.child({ component: "usergroups" });
  }

  /** Whether group membership is looked up at all (there is a bot token). */
  get active(): boolean {
    return this.d.list !== undefined;
  }

  /**
   * The policy's groups the user is in, as last read from Slack (at most MAX_ACTOR_GROUPS);
   * undefined when the user is in none of them or membership is not known yet.
   */
  groupsOf(userId: string): readonly string[] | undefined {
    return this.loaded ? this.members.get(userId) : undefined;
  }

  /**
   * Whether the user is in the group (any enabled group of the workspace, named by the policy or
   * not); false while membership is not known (fails closed).
   */
  isMember(userId: string, groupId: string): boolean {
    return this.loaded && (this.byGroup.get(groupId)?.has(userId) ?? false);
  }

  /** Every enabled group the user is in, the policy's first (what `list` counts as the user's teams); at most `max`. */
  allGroupsOf(userId: string, max: number): string[] {
    if (!this.loaded) return [];
    const named = this.members.get(userId) ?? [];
    const others = [...this.byGroup].filter(([g, users]) => !this.wanted.has(g) && users.has(userId)).map(([g]) => g);
    return [...named, ...others].slice(0, max);
  }

  /** Reads the membership once (awaited, bounded by the timeout), then again every refreshMs. */
  async start(): Promise<void> {
    if (!this.d.list) {
      if (!this.d.policy.usesGroups) return;
      this.log.warn(
        { groups: this.d.policy.boundGroups },
        "the policy binds roles to Slack user groups, but without SLACK_BOT_TOKEN the gateway cannot look up who is in them: group bindings do not apply to commands from Slack",
      );
      return;
    }
    await this.refresh();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** One read of the membership; true when it replaced the map. Never throws. */
  async refresh(): Promise<boolean> {
    if (!this.d.list) return false;
    const started = performance.now();
    let answer: unknown;
    try {
      answer = await withDeadline(this.d.list(), this.d.timeoutMs ?? USERGROUPS_TIMEOUT_MS);
    } catch (err) {
      this.failed(reasonOf(err));
      return false;
    }
    const parsed = UsergroupsListSchema.safeParse(answer);
    if (!parsed.success) {
      this.failed("Slack's answer is not a usergroups.list answer");
      return false;
    }
    const members = new Map<string, string[]>();
    const byGroup = new Map<string, Set<string>>();
    const seen = new Set<string>();
    for (const g of parsed.data.usergroups) {
      if ((g.date_delete ?? 0) !== 0) continue;
      byGroup.set(g.id, new Set(g.users ?? []));
      if (!this.wanted.has(g.id)) continue;
      seen.add(g.id);
      for (const user of g.users ?? []) {
        let list = members.get(user);
        if (!list) members.set(user, (list = []));
        if (!list.includes(g.id)) list.push(g.id);
      }
    }
    let capped = 0;
    for (const [user, list] of members) {
      list.sort((a, b) => (this.order.get(a) ?? 0) - (this.order.get(b) ?? 0));
      if (list.length > MAX_ACTOR_GROUPS) {
        members.set(user, list.slice(0, MAX_ACTOR_GROUPS));
        capped += 1;
      }
    }
    const recovered = !this.loaded || this.failures > 0;
    this.members = members;
    this.byGroup = byGroup;
    this.loaded = true;
    this.failures = 0;
    this.d.metrics.usergroupRefreshes.inc({ outcome: "ok" });
    const summary = { groups: seen.size, users: members.size, ms: Math.round(performance.now() - started) };
    if (recovered) this.log.info(summary, "Slack user group membership loaded");
    else this.log.debug(summary, "Slack user group membership refreshed");
    if (capped > 0) this.log.warn({ users: capped, max: MAX_ACTOR_GROUPS }, "users in more of the policy's groups than a command can carry; the policy's first ones are kept");
    // A group the policy names that Slack does not list (a typo, another workspace, disabled) binds nobody: say so when that changes.
    const missing = [...this.wanted].filter((g) => !seen.has(g)).join(",");
    if (missing !== this.missing) {
      this.missing = missing;
      if (missing) this.log.warn({ groups: missing.split(",") }, "the policy names user groups that Slack does not list as enabled; their bindings match nobody");
    }
    return true;
  }

  private failed(reason: string): void {
    this.failures += 1;
    this.d.metrics.usergroupRefreshes.inc({ outcome: "failed" });
    // The reason is built from the error's code and Slack's error string, never the error object:
    // a request error carries the HTTP request, and with it the bot token.
    if (this.loaded) {
      this.log.warn({ reason, failures: this.failures }, "could not refresh Slack user group membership; keeping the last one read");
    } else if (this.failures === 1) {
      this.log.warn({ reason }, "could not read Slack user group membership: until a refresh succeeds, no group binding applies to commands from Slack");
    } else {
      this.log.warn({ reason, failures: this.failures }, "could not read Slack user group membership (still none known)");
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    // One read at a time: the next one is timed from the end of the last.
    this.timer = setTimeout(() => {
      void this.refresh().finally(() => this.schedule());
    }, this.d.refreshMs);
    this.timer.unref();
  }
}

async function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new DeadlineError(ms)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

class DeadlineError extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
  }
}

/** What went wrong, from fields that never hold the token (@slack/web-api error codes). */
function reasonOf(err: unknown): string {
  if (err instanceof DeadlineError) return err.message;
  const e = err as { code?: unknown; data?: { error?: unknown }; statusCode?: unknown; retryAfter?: unknown; original?: { code?: unknown } };
  switch (e?.code) {
    case "slack_webapi_platform_error":
      return `Slack answered ${String(e.data?.error ?? "an error")}`;
    case "slack_webapi_http_error":
      return `HTTP ${String(e.statusCode)}`;
    case "slack_webapi_rate_limited_error":
      return `rate limited (retry after ${String(e.retryAfter)} s)`;
    case "slack_webapi_request_error":
      return `request failed${typeof e.original?.code === "string" ? ` (${e.original.code})` : ""}`;
    default:
      return typeof e?.code === "string" ? e.code : "unknown error";
  }
}
