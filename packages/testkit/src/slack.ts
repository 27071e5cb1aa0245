import { createHmac, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

/** Slack's v0 request signature: https://api.slack.com/authentication/verifying-requests-from-slack */
export function slackSignature(secret: string, timestamp: number, body: string): string {
  return `v0=${createHmac("sha256", secret).update(`v0:${timestamp}:${body}`).digest("hex")}`;
}

export function signedHeaders(secret: string, body: string, timestamp = Math.floor(Date.now() / 1000)): Record<string, string> {
  return {
    "x-slack-request-timestamp": String(timestamp),
    "x-slack-signature": slackSignature(secret, timestamp, body),
  };
}

export interface SlashCommandFields {
  text: string;
  user_id?: string;
  user_name?: string;
  team_id?: string;
  channel_id?: string;
  response_url?: string;
  command?: string;
  trigger_id?: string;
}

/** The form body Slack sends for a slash command. */
export function slashCommandBody(fields: SlashCommandFields): string {
  const form = new URLSearchParams({
    token: "deprecated-verification-token",
    team_id: fields.team_id ?? "T0001",
    team_domain: "example",
    channel_id: fields.channel_id ?? "C0001",
    channel_name: "iaas",
    user_id: fields.user_id ?? "U0001",
    user_name: fields.user_name ?? "alice",
    command: fields.command ?? "/iaas",
    text: fields.text,
    api_app_id: "A0001",
    is_enterprise_install: "false",
    response_url: fields.response_url ?? "https://hooks.slack.com/commands/T0001/1/abc",
    trigger_id: fields.trigger_id ?? `${Date.now()}.1.${randomUUID()}`,
  });
  return form.toString();
}

export interface SignedPostOptions {
  secret: string;
  timestamp?: number;
  headers?: Record<string, string>;
  /** Skip signing (to test rejection). */
  unsigned?: boolean;
}

export interface PostResult {
  status: number;
  body: string;
  json: unknown;
  ms: number;
}

/** POSTs a body to the gateway with real Slack signature headers. */
export async function postSigned(url: string, body: string, opts: SignedPostOptions): Promise<PostResult> {
  const contentType = body.startsWith("{") ? "application/json" : "application/x-www-form-urlencoded";
  const headers: Record<string, string> = {
    "content-type": contentType,
    ...(opts.unsigned ? {} : signedHeaders(opts.secret, body, opts.timestamp)),
    ...opts.headers,
  };
  const started = performance.now();
  const res = await fetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, body: text, json, ms: performance.now() - started };
}

/** The form body of an interactive (`block_actions`) payload. */
export function blockActionsBody(payload: Record<string, unknown>): string {
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

export interface RecordedCall {
  /** Web API method (`chat.postMessage`) or `response_url`. */
  method: string;
  path: string;
  body: Record<string, unknown>;
  at: number;
}

/**
 * Slack's side of the wire, for tests and local runs: records Web API calls under `/api/<method>`
 * and posts to response URLs it hands out under `/response/<id>`. The only stand-in in the tests.
 */
export class SlackStandIn {
  readonly calls: RecordedCall[] = [];
  private server: Server;
  private baseUrl = "";
  /** When set, response_url posts answer with this status (to test fallbacks). */
  responseUrlStatus = 200;
  /**
   * The workspace's user groups, as `usergroups.list` answers them: id, members, and whether the
   * group is disabled (Slack then sets `date_delete` and leaves it out unless `include_disabled`).
   */
  usergroups: { id: string; users: string[]; disabled?: boolean }[] = [];
  /** When set, `usergroups.list` answers `{ ok: false, error }` (to test a failing refresh). */
  usergroupsError: string | undefined;

  private constructor() {
    this.server = createServer((req, res) => {
      void this.handle(req).then(
        ([status, out]) => {
          res.writeHead(status, { "content-type": "application/json" });
          res.end(JSON.stringify(out));
        },
        () => {
          res.writeHead(500);
          res.end();
        },
      );
    });
  }

  static async start(): Promise<SlackStandIn> {
    const s = new SlackStandIn();
    await new Promise<void>((resolve) => s.server.listen(0, "127.0.0.1", resolve));
    s.baseUrl = `http://127.0.0.1:${(s.server.address() as AddressInfo).port}`;
    return s;
  }

  /** Base URL of the Web API, for `SLACK_API_URL` (ends with `/api/`). */
  get apiUrl(): string {
    return `${this.baseUrl}/api/`;
  }

  /** A fresh response URL on this server. */
  responseUrl(id: string = randomUUID()): string {
    return `${this.baseUrl}/response/${id}`;
  }

  postsTo(responseUrl: string): RecordedCall[] {
    const path = new URL(responseUrl).pathname;
    return this.calls.filter((c) => c.method === "response_url" && c.path === path);
  }

  apiCalls(method: string): RecordedCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  /** Waits until `predicate` holds over the recorded calls; throws with what was seen on timeout. */
  async waitFor<T>(predicate: (calls: RecordedCall[]) => T | undefined | false, timeoutMs = 15_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = predicate(this.calls);
      if (v) return v;
      if (Date.now() > deadline) {
        throw new Error(`Slack stand-in: condition not met in ${timeoutMs} ms; calls: ${JSON.stringify(this.calls, null, 1).slice(0, 3000)}`);
      }
      await sleep(20);
    }
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** https://api.slack.com/methods/usergroups.list: the fields the gateway reads, and a few more. */
  private usergroupsList(args: Record<string, unknown>): unknown {
    if (this.usergroupsError !== undefined) return { ok: false, error: this.usergroupsError };
    const yes = (v: unknown) => v === true || v === "true" || v === "1" || v === 1;
    return {
      ok: true,
      usergroups: this.usergroups
        .filter((g) => !g.disabled || yes(args.include_disabled))
        .map((g) => ({
          id: g.id,
          team_id: "T0001",
          is_usergroup: true,
          name: g.id.toLowerCase(),
          handle: g.id.toLowerCase(),
          date_create: 1_700_000_000,
          date_delete: g.disabled ? 1_700_000_100 : 0,
          user_count: g.users.length,
          ...(yes(args.include_users) ? { users: [...g.users] } : {}),
        })),
    };
  }

  private async handle(req: IncomingMessage): Promise<[number, unknown]> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString("utf8");
    const path = new URL(req.url ?? "/", this.baseUrl).pathname;
    if (req.method === "GET" && path === "/calls") {
      // For local runs: scripts/slack.mjs reads what "Slack" received.
      return [200, { calls: this.calls }];
    }
    let body: Record<string, unknown> = {};
    if ((req.headers["content-type"] ?? "").includes("application/json")) {
      body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
    } else {
      body = Object.fromEntries(new URLSearchParams(raw));
    }
    if (path.startsWith("/response/")) {
      this.calls.push({ method: "response_url", path, body, at: Date.now() });
      return [this.responseUrlStatus, this.responseUrlStatus === 200 ? { ok: true } : { ok: false, error: "expired_url" }];
    }
    if (path.startsWith("/api/")) {
      const method = path.slice("/api/".length);
      this.calls.push({ method, path, body, at: Date.now() });
      switch (method) {
        case "auth.test":
          return [200, { ok: true, url: "https://example.slack.com/", team: "example", user: "iaas", team_id: "T0001", user_id: "UBOT", bot_id: "BBOT" }];
        case "chat.postMessage":
          return [200, { ok: true, channel: body.channel, ts: `${Date.now() / 1000}`, message: { text: body.text } }];
        case "usergroups.list":
          return [200, this.usergroupsList(body)];
        default:
          return [200, { ok: true }];
      }
    }
    return [404, { ok: false, error: "unknown_path" }];
  }
}
