import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "@iaas/runtime";
import type { Block } from "../presentation/blocks.js";
import type { RequestStore, StoredRequest } from "../stores/requests.js";

/** Hosts Slack hands out response URLs on (commercial and GovSlack). Always https. */
const SLACK_RESPONSE_HOSTS = new Set(["hooks.slack.com", "hooks.slack-gov.com"]);

/**
 * Decides whether a response_url may be posted to: only Slack's own hosts over https, or the
 * host (and port) of `SLACK_API_URL` when that is set (tests, local use). This is what keeps a
 * crafted `response_url` from turning the gateway into a request forwarder.
 */
export function responseUrlGuard(slackApiUrl: string | undefined): (url: string) => boolean {
  const local = slackApiUrl ? new URL(slackApiUrl) : undefined;
  return (raw) => {
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      return false;
    }
    if (u.username || u.password) return false;
    if (u.protocol === "https:" && u.port === "" && SLACK_RESPONSE_HOSTS.has(u.hostname)) return true;
    return local !== undefined && u.protocol === local.protocol && u.host === local.host;
  };
}

/** A message as Slack's response_url (and an ack) takes it: `text` is the fallback when `blocks` are set. */
export interface SlackMessage {
  text: string;
  response_type?: "ephemeral" | "in_channel";
  replace_original?: boolean;
  delete_original?: boolean;
  blocks?: Block[];
}

export type PostOutcome = { ok: true } | { ok: false; permanent: boolean; detail: string };

export interface PostOptions {
  attempts: number;
  timeoutMs: number;
  /** Back-off before attempt n+1 is `backoffMs * 2^(n-1)`. */
  backoffMs: number;
}

export const DEFAULT_POST_OPTIONS: PostOptions = { attempts: 3, timeoutMs: 5_000, backoffMs: 300 };

/**
 * POSTs a message to a response_url. Network errors, timeouts, 429 and 5xx are retried (bounded);
 * other answers (Slack uses 404 for an expired or used-up URL) are permanent. Redirects are
 * not followed: the guard approved this host, not wherever it might point.
 */
export async function postToResponseUrl(url: string, message: SlackMessage, opts: PostOptions = DEFAULT_POST_OPTIONS): Promise<PostOutcome> {
  let last: PostOutcome = { ok: false, permanent: false, detail: "not tried" };
  const body = JSON.stringify(message);
  for (let attempt = 1; attempt <= opts.attempts; attempt++) {
    if (attempt > 1) await sleep(opts.backoffMs * 2 ** (attempt - 2));
    try {
      const res = await postJson(url, body, opts.timeoutMs);
      if (res.status >= 200 && res.status < 300) return { ok: true };
      const transient = res.status === 429 || res.status >= 500;
      last = { ok: false, permanent: !transient, detail: `HTTP ${res.status} ${res.body.slice(0, 100)}`.trim() };
      if (!transient) return last;
    } catch (err) {
      last = { ok: false, permanent: false, detail: err instanceof PostTimeout ? `no answer in ${opts.timeoutMs} ms` : String((err as Error).message) };
    }
  }
  return last;
}

class PostTimeout extends Error {}

/**
 * Keep-alive pools for response_url posts. node:http rather than fetch: a post is one small JSON
 * body and a status, and fetch's streams, Headers and AbortSignal cost several times the CPU and
 * memory per post at hundreds of results a second. Idle sockets are dropped after 30 s.
 */
const agents = {
  http: new HttpAgent({ keepAlive: true, maxSockets: 64, timeout: 30_000 }),
  https: new HttpsAgent({ keepAlive: true, maxSockets: 64, timeout: 30_000 }),
};

/** One POST with a deadline for the whole exchange; the status and at most the first KiB of the answer. */
function postJson(url: string, body: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const https = u.protocol === "https:";
    const req = (https ? httpsRequest : httpRequest)(
      u,
      { method: "POST", agent: https ? agents.https : agents.http, headers: { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body) } },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          if (text.length < 1024) text += chunk;
        });
        res.on("end", () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, body: text });
        });
        res.on("error", fail);
        res.on("close", () => {
          if (!res.complete) fail(new Error("the connection closed before the answer was complete"));
        });
      },
    );
    const timer = setTimeout(() => req.destroy(new PostTimeout()), timeoutMs);
    function fail(err: Error): void {
      clearTimeout(timer);
      reject(err);
    }
    req.on("error", fail);
    req.end(body);
  });
}

/** How a message reached the user: its response_url, an ephemeral message in the channel, a DM, or not at all. */
export type Via = "response_url" | "ephemeral" | "dm" | "none";

/** chat.postMessage as the bot (to a user id: the app's DM with that user). */
export type PostMessage = (channel: string, text: string, blocks?: Block[]) => Promise<void>;
/** chat.postEphemeral as the bot: seen only by `user`, in `channel`. */
export type PostEphemeral = (channel: string, user: string, text: string, blocks?: Block[]) => Promise<void>;

export interface ReplierDeps {
  requests: RequestStore;
  allowed: (url: string) => boolean;
  /** chat.postMessage, when a bot token is configured: only ever to the requester's DM here. */
  postMessage?: PostMessage;
  /** chat.postEphemeral, when a bot token is configured. */
  postEphemeral?: PostEphemeral;
  log: Logger;
  post?: PostOptions;
}

/**
 * Delivers result messages for a request: to its response_url while Slack still accepts posts
 * there, else (final results only) as the bot, privately: `chat.postEphemeral` in the request's
 * channel (only the requester sees it), or, when that fails (the bot is not in the channel, a DM
 * between two people), a DM to the requester (`chat.postMessage` to the user id). Never a
 * public post: a result holds a VM's facts, which the channel's members may not be let see.
 */
export class Replier {
  constructor(private readonly d: ReplierDeps) {}

  /**
   * `stored` is the request as just read; it comes back as the store last saw it (after taking
   * a post), so the caller can record the delivery without reading it again.
   */
  async deliver(stored: StoredRequest, message: SlackMessage, kind: "progress" | "final"): Promise<{ via: Via; stored: StoredRequest }> {
    const rec = stored.record;
    // Only the unusual paths log here; the relay logs the usual outcome.
    const log = () => this.d.log.child({ requestId: rec.id, kind });
    const url = rec.responseUrl;
    if (url !== undefined && !this.d.allowed(url)) {
      // Records are written from verified requests only; this is a forged or misrouted one.
      log().warn({ host: safeHost(url) }, "not posting: the response_url is not on Slack's host");
      return { via: "none", stored };
    }
    let after = stored;
    if (url !== undefined) {
      const slot = await this.d.requests.takePost(rec.id, kind, stored);
      after = slot.ok ? slot.stored : stored;
      if (slot.ok) {
        const out = await postToResponseUrl(url, message, this.d.post);
        if (out.ok) return { via: "response_url", stored: after };
        log().warn({ detail: out.detail, permanent: out.permanent }, "response_url post failed");
      } else {
        log().info({ reason: slot.reason }, "response_url not usable");
      }
    }
    // Progress is not worth a channel message; the final result is.
    if (kind === "progress") return { via: "none", stored: after };
    // A command from the App Home has no channel to be ephemeral in: its DM with the app.
    if (url === undefined) return { via: (await this.dm(rec.userId, message, rec.id)) ? "dm" : "none", stored: after };
    if (!this.d.postEphemeral && !this.d.postMessage) {
      log().warn("final result not delivered: the response_url is used up and SLACK_BOT_TOKEN is not set");
      return { via: "none", stored: after };
    }
    if (this.d.postEphemeral) {
      try {
        await this.d.postEphemeral(rec.channelId, rec.userId, message.text, message.blocks);
        return { via: "ephemeral", stored: after };
      } catch (err) {
        log().info({ reason: slackErrorOf(err) }, "chat.postEphemeral failed; sending the result as a DM");
      }
    }
    if (this.d.postMessage) {
      try {
        await this.d.postMessage(rec.userId, message.text, message.blocks);
        return { via: "dm", stored: after };
      } catch (err) {
        log().warn({ reason: slackErrorOf(err) }, "chat.postMessage to the requester failed; final result not delivered");
      }
    }
    return { via: "none", stored: after };
  }

  /**
   * One post to a response_url that is not (or not yet) in the store: the answer to a command
   * whose submission failed after the ack. The URL still has to pass the guard.
   */
  /** `direct` to the request's response_url, or without one (the App Home) a DM to the user. */
  async later(to: { response_url?: string | undefined; user_id: string }, message: SlackMessage, requestId: string): Promise<boolean> {
    return to.response_url !== undefined ? this.direct(to.response_url, message, requestId) : this.dm(to.user_id, message, requestId);
  }

  /** A message to the user's DM with the app (chat.postMessage to the user id; scope chat:write). */
  async dm(userId: string, message: SlackMessage, requestId: string): Promise<boolean> {
    if (!this.d.postMessage) {
      this.d.log.warn({ requestId }, "not delivered: a DM needs SLACK_BOT_TOKEN");
      return false;
    }
    try {
      await this.d.postMessage(userId, message.text, message.blocks);
      return true;
    } catch (err) {
      this.d.log.warn({ requestId, reason: slackErrorOf(err) }, "chat.postMessage to the user failed; not delivered");
      return false;
    }
  }

  async direct(responseUrl: string, message: SlackMessage, requestId: string): Promise<boolean> {
    if (!this.d.allowed(responseUrl)) return false;
    const out = await postToResponseUrl(responseUrl, message, this.d.post);
    if (!out.ok) this.d.log.warn({ requestId, detail: out.detail }, "response_url post failed");
    return out.ok;
  }
}

/** Slack's error string or the client's code, never the error object (its request holds the token). */
function slackErrorOf(err: unknown): string {
  const e = err as { code?: unknown; data?: { error?: unknown } };
  return typeof e?.data?.error === "string" ? e.data.error : typeof e?.code === "string" ? e.code : "unknown error";
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return "(not a URL)";
  }
}
