import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { App, HTTPModuleFunctions, HTTPReceiver, LogLevel, SocketModeReceiver, type Logger as BoltLogger, type types, type webApi } from "@slack/bolt";
import { ByteBudget, ConfigError, type Logger } from "@iaas/runtime";
import { IaasError } from "@iaas/contracts";
import type { GatewayConfig } from "../config.js";
import type { Block } from "../presentation/blocks.js";
import type { SlackMessage } from "./reply.js";

type Headers = Record<string, string | string[] | undefined>;
type Verify = (opts: unknown, req: { headers: Headers }, res?: unknown) => Promise<unknown>;
type NoBody = (res: { setHeader(k: string, v: string): unknown }, status: number) => void;

/**
 * Replaces one of Bolt's module functions, once per tag (Bolt's receivers call them through the
 * module object, so a replacement there is what they run).
 */
function wrapBolt<F extends (...args: never[]) => unknown>(name: "parseHTTPRequestBody" | "parseAndVerifyHTTPRequest" | "buildNoBodyResponse", tag: string, wrap: (original: F) => F): void {
  const fns = HTTPModuleFunctions as unknown as Record<string, F & { iaasTags?: readonly string[] }>;
  const original = fns[name]!;
  if (original.iaasTags?.includes(tag)) return;
  fns[name] = Object.assign(wrap(original), { iaasTags: [...(original.iaasTags ?? []), tag] });
}

/** A signed body that is not an object would end the process inside Bolt 5.1 (docs/slack-notes.md): it gets Bolt's 400. */
function guardBoltBodyParser(): void {
  wrapBolt<(req: unknown) => unknown>("parseHTTPRequestBody", "object", (parse) => (req) => {
    const body = parse(req);
    if (body === null || typeof body !== "object" || Array.isArray(body)) throw new Error("the request body is not an object");
    return body;
  });
}

/** How far a request's timestamp may be from our clock, either way (Slack's verification guide). */
export const SLACK_TIMESTAMP_SKEW_S = 5 * 60;

/** Bolt 5.1 refuses only stale timestamps; this refuses those more than 5 minutes ahead too (docs/slack-notes.md). */
function guardBoltFutureTimestamps(): void {
  wrapBolt<Verify>("parseAndVerifyHTTPRequest", "future", (verify) => async (opts, req, res) => {
    const verified = await verify(opts, req, res);
    const enabled = (opts as { enabled?: boolean }).enabled !== false;
    const stamp = Number(req.headers["x-slack-request-timestamp"]);
    if (enabled && Number.isFinite(stamp) && stamp - Math.floor(Date.now() / 1000) > SLACK_TIMESTAMP_SKEW_S) {
      throw new Error(`x-slack-request-timestamp is more than ${SLACK_TIMESTAMP_SKEW_S} s in the future`);
    }
    return verified;
  });
}

/**
 * Bolt reads a whole body before it can check the signature, so anyone who reaches the port makes
 * the gateway hold what they send (Bolt's own limit is 4 MB per request, with no total: 50
 * concurrent 4 MB bodies ended the process at its 96 MB heap). Each request reserves its declared
 * length (the per-request limit when it declares none) from one budget before its body is read,
 * and gives it back when the body has been read and verified. A request that does not fit gets the
 * same 413 as one over the per-request limit: Bolt answers only 401 and 413 at this step.
 */
export class BodyBudget {
  private readonly bytes: ByteBudget;
  constructor(
    readonly perRequest: number,
    readonly total: number,
  ) {
    this.bytes = new ByteBudget(total);
  }

  /** The bytes reserved for this request, or undefined when they do not fit. */
  reserve(headers: Headers): number | undefined {
    const declared = Number(headers["content-length"]);
    const want = Number.isFinite(declared) && declared >= 0 ? Math.min(declared, this.perRequest + 1) : this.perRequest;
    return this.bytes.take(want) ? want : undefined;
  }

  release(n: number): void {
    this.bytes.give(n);
  }

  get inUse(): number {
    return this.bytes.inUse;
  }
}

/** Bolt's raw-body error shape, which its receiver answers with 413. */
function tooLarge(limit: number): Error {
  return Object.assign(new Error("the gateway holds as many request bodies as it may; try again"), { type: "entity.too.large", statusCode: 413, status: 413, expose: true, limit });
}

let activeBudget: BodyBudget | undefined;

function guardBoltBodyBudget(): void {
  wrapBolt<Verify>("parseAndVerifyHTTPRequest", "budget", (verify) => async (opts, req, res) => {
    const budget = activeBudget;
    if (!budget) return verify(opts, req, res);
    const held = budget.reserve(req.headers);
    if (held === undefined) throw tooLarge(budget.total);
    try {
      return await verify(opts, req, res);
    } finally {
      budget.release(held);
    }
  });
  // Bolt answers 413 before the body is read: the connection must not be reused for the next
  // request, which would find the rest of this body in front of it (a client's next request failed).
  wrapBolt<NoBody>("buildNoBodyResponse", "close-on-413", (noBody) => (res, status) => {
    if (status === 413) res.setHeader("connection", "close");
    noBody(res, status);
  });
}

/** Where Slack's HTTP requests arrive (the app manifest points `/iaas` and interactivity here). */
export const SLACK_EVENTS_PATH = "/slack/events";

export type CommandListener = (body: unknown, ack: (m?: SlackMessage) => Promise<void>, meta: { retryNum?: number | undefined }) => Promise<void>;
/** A verified `block_actions` payload (a button click), already acked. */
export type ActionListener = (body: unknown) => Promise<void>;

/**
 * A verified `view_submission` or `view_closed` payload (a modal submitted or closed). `ack`
 * answers Slack within its 3 s: empty (close the modal), or `{response_action: "errors",
 * errors: {block_id: "why"}}`, `update`, `push`, `clear`.
 */
export type ViewListener = (body: unknown, ack: (answer?: Record<string, unknown>) => Promise<void>) => Promise<void>;
/** A verified `block_suggestion` payload (an external select's options load); `ack` sends the options. */
export type OptionsListener = (body: unknown, ack: (answer: Record<string, unknown>) => Promise<void>) => Promise<void>;
/** A verified Events API event (`app_home_opened`), already acked; `body.event` is the event. */
export type EventListener = (body: unknown) => Promise<void>;

/** What the gateway hears from Slack besides slash commands and button clicks; each optional. */
export interface InteractionListeners {
  onView?: ViewListener;
  onOptions?: OptionsListener;
  onEvent?: EventListener;
}

/** Slack Web API calls the gateway makes as the bot (https://api.slack.com/methods), each bounded by the client's timeout and retries. */
export interface SlackApi {
  /** chat.postMessage; answers the message's channel and ts (for chat.update). */
  postMessage(channel: string, text: string, blocks?: Block[]): Promise<{ channel: string; ts: string }>;
  /** chat.update of a message the bot posted. */
  update(channel: string, ts: string, text: string, blocks?: Block[]): Promise<void>;
  /** views.open with a trigger_id (valid 3 s after the user's action); answers the view's id. */
  viewsOpen(triggerId: string, view: Record<string, unknown>): Promise<{ viewId: string }>;
  /** views.update of an open view (`hash` guards against a race with another update). */
  viewsUpdate(viewId: string, view: Record<string, unknown>, hash?: string): Promise<void>;
  /** views.publish: a user's App Home tab. */
  viewsPublish(userId: string, view: Record<string, unknown>): Promise<void>;
}

export interface SlackTransport {
  /** HTTP: the bound port. Socket Mode: undefined (no listening socket). */
  start(): Promise<{ port: number | undefined }>;
  stop(): Promise<void>;
  /** chat.postMessage as the bot; undefined without SLACK_BOT_TOKEN. */
  postMessage?: (channel: string, text: string, blocks?: Block[]) => Promise<void>;
  /** chat.postEphemeral as the bot (only `user` sees it); undefined without SLACK_BOT_TOKEN. */
  postEphemeral?: (channel: string, user: string, text: string, blocks?: Block[]) => Promise<void>;
  /** usergroups.list with members, enabled groups only (scope usergroups:read); undefined without SLACK_BOT_TOKEN. */
  listUserGroups?: () => Promise<unknown>;
  /** Socket Mode: whether the WebSocket to Slack is up (greeted with `hello`). Undefined over HTTP. */
  socketConnected?: () => boolean;
  /** The Web API calls of approvals, leases, modals and the App Home; undefined without SLACK_BOT_TOKEN. */
  api?: SlackApi;
}

/** How long the gateway waits before reconnecting its Socket Mode connection: `minMs` doubled after each failed attempt, at most `maxMs`. */
export interface SocketReconnect {
  minMs: number;
  maxMs: number;
}

export const SOCKET_RECONNECT: SocketReconnect = { minMs: 1_000, maxMs: 60_000 };

/** The wait before reconnect attempt `attempt` (1 for the first after a close). */
export function reconnectDelay(attempt: number, { minMs, maxMs }: SocketReconnect): number {
  return Math.min(maxMs, minMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
}

/**
 * The Bolt app: transport only (signature check, replay window, ack plumbing); what a command
 * means is the listener's business.
 *
 * - HTTP (default): `POST /slack/events`, verified by Bolt's HTTPReceiver with the signing
 *   secret; a bad signature, a timestamp more than 5 minutes off (either way) or missing headers
 *   get 401 before any listener runs.
 * - Socket Mode (SLACK_APP_TOKEN set): payloads arrive over the WebSocket that
 *   `apps.connections.open` answers, reach the same listeners and are acked over the socket; the
 *   gateway reconnects it itself (`keepConnected`).
 *
 * How Bolt and the Socket Mode client behave here, and why it is built this way: docs/slack-notes.md.
 */
export function createSlackTransport(
  config: GatewayConfig,
  log: Logger,
  onCommand: CommandListener,
  onAction: ActionListener,
  opts: { reconnect?: SocketReconnect; listeners?: InteractionListeners } = {},
): SlackTransport {
  guardBoltBodyParser();
  guardBoltFutureTimestamps();
  guardBoltBodyBudget();
  // One budget per process (the guard wraps Bolt's module function): one gateway runs per process.
  if (!config.SLACK_APP_TOKEN) activeBudget = new BodyBudget(config.GATEWAY_BODY_LIMIT, config.GATEWAY_INFLIGHT_BYTES);
  const logger = boltLogger(log.child({ component: "bolt" }));
  const clientOptions: webApi.WebClientOptions = {
    ...(config.SLACK_API_URL ? { slackApiUrl: config.SLACK_API_URL } : {}),
    // Bounded: the WebClient's default retries go on for about 30 minutes.
    timeout: 5_000,
    retryConfig: { retries: 2, factor: 2, minTimeout: 250, maxTimeout: 2_000 },
    rejectRateLimitedCalls: true,
    logger,
  };
  const auth = config.SLACK_BOT_TOKEN ? { token: config.SLACK_BOT_TOKEN } : { authorize: async () => ({}) };
  const common = { ...auth, logger, logLevel: LogLevel.INFO, clientOptions, deferInitialization: true, convoStore: false as const };

  // Built here rather than by `socketMode: true` so that its client is ours to watch.
  const receiver = config.SLACK_APP_TOKEN
    ? new SocketModeReceiver({ appToken: config.SLACK_APP_TOKEN, logger, logLevel: LogLevel.INFO, autoReconnectEnabled: false, installerOptions: { clientOptions: { ...clientOptions } } })
    : undefined;
  const socket = receiver ? keepConnected(receiver, log.child({ component: "socket-mode" }), opts.reconnect ?? SOCKET_RECONNECT) : undefined;
  const socketMode = receiver !== undefined;
  const signingSecret = config.SLACK_SIGNING_SECRET;
  // The config already refuses HTTP mode without it; this keeps an unverified HTTP receiver impossible.
  if (!receiver && !signingSecret) throw new ConfigError(["SLACK_SIGNING_SECRET"], "invalid configuration: SLACK_SIGNING_SECRET: is required (unless SLACK_APP_TOKEN is set, for Socket Mode)");
  const app = receiver
    ? new App({ ...common, receiver })
    : new App({
        ...common,
        receiver: new HTTPReceiver({
          signingSecret: signingSecret!,
          endpoints: SLACK_EVENTS_PATH,
          // Ack first, then keep working (Bolt's default): Slack wants the answer within 3 s.
          processBeforeResponse: false,
          bodyLimit: config.GATEWAY_BODY_LIMIT,
          logger,
          logLevel: LogLevel.INFO,
        }),
      });

  // Every slash command routed to this app; the app manifest declares only `/iaas`.
  app.command(/.*/, async ({ body, ack, context }) => {
    // Our Block type is the subset of Block Kit we build (blocks.ts); Bolt's is the full union.
    await onCommand(body, async (m) => (m === undefined ? ack() : ack(m as Parameters<typeof ack>[0])), { retryNum: context.retryNum });
  });
  // Confirm / Cancel clicks arrive on the same signed endpoint (interactivity URL). Slack wants an
  // empty 200 within 3 s; the answer goes to the payload's response_url.
  app.action({ type: "block_actions", action_id: /^iaas\./ }, async ({ body, ack }) => {
    await ack();
    await onAction(body);
  });
  const { onView, onOptions, onEvent } = opts.listeners ?? {};
  // Modals: submitted or closed. The answer (close, or field errors) is the ack itself.
  if (onView) {
    app.view({ type: "view_submission", callback_id: /.*/ }, async ({ body, ack }) => {
      // Bolt types the answer as one of its response_action shapes; ours is built to match them.
      await onView(body, async (answer) => (answer === undefined ? ack() : ack(answer as never)));
    });
    app.view({ type: "view_closed", callback_id: /.*/ }, async ({ body, ack }) => {
      await onView(body, async () => ack());
    });
  }
  // An external select's options, asked as the user types: answered in the ack.
  if (onOptions) {
    app.options(/.*/, async ({ body, ack }) => {
      await onOptions(body, async (answer) => ack(answer as never));
    });
  }
  // Events API (the manifest subscribes to app_home_opened only). Bolt acks events itself.
  if (onEvent) {
    app.event("app_home_opened", async ({ body }) => {
      await onEvent(body);
    });
  }
  app.error(async (err) => {
    log.error({ err }, "Slack listener failed");
  });

  let server: Server | undefined;
  return {
    start: async () => {
      try {
        await app.init();
      } catch (err) {
        throw tokenError(err);
      }
      if (socketMode) {
        try {
          await app.start();
        } catch (err) {
          throw appTokenError(err);
        }
        socket?.started();
        log.info("connected to Slack over Socket Mode");
        return { port: undefined };
      }
      server = (await app.start({ port: config.GATEWAY_PORT, host: config.GATEWAY_HOST })) as Server;
      const port = (server.address() as AddressInfo).port;
      log.info({ host: config.GATEWAY_HOST, port, path: SLACK_EVENTS_PATH }, "listening for Slack");
      return { port };
    },
    stop: async () => {
      // Idle keep-alive connections would hold the HTTP server open.
      server?.closeIdleConnections();
      socket?.stop();
      await app.stop().catch((err: unknown) => log.debug({ err }, "stopping the Slack app"));
    },
    ...(config.SLACK_BOT_TOKEN
      ? {
          postMessage: async (channel: string, text: string, blocks?: Block[]) => {
            // Our Block type is the subset of Block Kit we build (blocks.ts); Bolt's is the full union.
            await app.client.chat.postMessage({ channel, text, ...(blocks ? { blocks: blocks as unknown as types.KnownBlock[] } : {}) });
          },
          postEphemeral: async (channel: string, user: string, text: string, blocks?: Block[]) => {
            await app.client.chat.postEphemeral({ channel, user, text, ...(blocks ? { blocks: blocks as unknown as types.KnownBlock[] } : {}) });
          },
          // https://api.slack.com/methods/usergroups.list: one call answers every group with its members.
          listUserGroups: () => app.client.usergroups.list({ include_users: true, include_disabled: false }),
          api: {
            postMessage: async (channel: string, text: string, blocks?: Block[]) => {
              const r = await app.client.chat.postMessage({ channel, text, ...(blocks ? { blocks: blocks as unknown as types.KnownBlock[] } : {}) });
              return { channel: r.channel ?? channel, ts: r.ts ?? "" };
            },
            update: async (channel: string, ts: string, text: string, blocks?: Block[]) => {
              await app.client.chat.update({ channel, ts, text, ...(blocks ? { blocks: blocks as unknown as types.KnownBlock[] } : {}) });
            },
            viewsOpen: async (triggerId: string, view: Record<string, unknown>) => {
              const r = await app.client.views.open({ trigger_id: triggerId, view: view as unknown as types.View });
              return { viewId: r.view?.id ?? "" };
            },
            viewsUpdate: async (viewId: string, view: Record<string, unknown>, hash?: string) => {
              await app.client.views.update({ view_id: viewId, view: view as unknown as types.View, ...(hash ? { hash } : {}) });
            },
            viewsPublish: async (userId: string, view: Record<string, unknown>) => {
              await app.client.views.publish({ user_id: userId, view: view as unknown as types.HomeView });
            },
          } satisfies SlackApi,
        }
      : {}),
    ...(socket ? { socketConnected: () => socket.connected() } : {}),
  };
}

/**
 * Keeps the Socket Mode connection up in place of the client's own reconnection (turned off: it
 * could end the process, docs/slack-notes.md): every attempt is awaited, a failed one is logged and
 * tried again after `reconnectDelay`; `connected()` is false meanwhile, for /readyz.
 */
function keepConnected(receiver: SocketModeReceiver, log: Logger, backoff: SocketReconnect) {
  const client = receiver.client;
  let connected = false;
  let running = false;
  let attempting = false;
  let attempts = 0;
  let timer: NodeJS.Timeout | undefined;

  const schedule = () => {
    attempts += 1;
    const delayMs = reconnectDelay(attempts, backoff);
    timer = setTimeout(() => {
      timer = undefined;
      void attempt();
    }, delayMs);
    return delayMs;
  };
  const attempt = async () => {
    if (!running) return;
    attempting = true;
    const n = attempts;
    try {
      await client.start();
      if (!running) {
        // Stopped while this attempt was under way: close what it opened.
        await client.disconnect();
        return;
      }
      log.info({ attempt: n }, "reconnected to Slack over Socket Mode");
      if (!connected) schedule(); // already closed again
    } catch (err) {
      if (!running) return;
      const retryInMs = schedule();
      log.warn({ attempt: n, retryInMs, reason: describe(err) }, "could not reconnect to Slack over Socket Mode; retrying");
    } finally {
      attempting = false;
    }
  };

  client.on("connected", () => {
    connected = true;
    attempts = 0;
  });
  client.on("disconnected", () => {
    connected = false;
    // During an attempt its own outcome decides; before the first start, the start reports it.
    if (!running || attempting || timer) return;
    const retryInMs = schedule();
    log.info({ retryInMs }, "Socket Mode connection closed; reconnecting");
  });

  return {
    connected: () => connected,
    /** The first connection is up: from now on a closed one is reopened. */
    started: () => {
      running = true;
    },
    stop: () => {
      running = false;
      clearTimeout(timer);
      timer = undefined;
    },
  };
}

/** An error's code and message, no more (a WebAPIHTTPError also carries headers and body). */
function describe(err: unknown): string {
  if (err === undefined) return "the WebSocket closed before Slack's hello";
  const e = err as { code?: unknown; message?: unknown };
  return [e.code, e.message].filter((v) => typeof v === "string" && v).join(": ") || String(err);
}

function tokenError(err: unknown): Error {
  const e = err as { code?: string; data?: { error?: string } };
  if (e?.code === "slack_webapi_platform_error") {
    return new ConfigError(["SLACK_BOT_TOKEN"], `invalid configuration: SLACK_BOT_TOKEN: Slack's auth.test refused it (${e.data?.error ?? "error"})`);
  }
  return new IaasError("IAAS_UNAVAILABLE", "Slack's Web API could not be reached to check SLACK_BOT_TOKEN (auth.test)", { cause: err });
}

/** `apps.connections.open` errors that say the token is no good (@slack/socket-mode's UnrecoverableSocketModeStartError, and the wrong kind of token). */
const TOKEN_REFUSALS = new Set(["not_authed", "invalid_auth", "account_inactive", "user_removed_from_team", "team_disabled", "not_allowed_token_type"]);

/**
 * A refused `apps.connections.open` (invalid_auth, not_authed, a revoked token…) at the first start
 * stops it naming the variable, never the token; any other failure then (Slack unreachable, a 503)
 * stops it as unavailable, for the orchestrator to restart. Later reconnects: `keepConnected`.
 */
function appTokenError(err: unknown): Error {
  const e = err as { code?: string; data?: { error?: string } };
  if (e?.code === "slack_webapi_platform_error" && TOKEN_REFUSALS.has(e.data?.error ?? "")) {
    return new ConfigError(["SLACK_APP_TOKEN"], `invalid configuration: SLACK_APP_TOKEN: Slack's apps.connections.open refused it (${e.data?.error ?? "error"})`);
  }
  return new IaasError("IAAS_UNAVAILABLE", "Slack could not be reached to open the Socket Mode connection (apps.connections.open)", { cause: err });
}

/** Bolt's logger interface onto pino. Bolt's debug output can include request details, so it stays at info or above. */
function boltLogger(log: Logger): BoltLogger {
  let level = LogLevel.INFO;
  const emit = (fn: "info" | "warn" | "error", msg: unknown[]) => {
    const err = msg.find((m): m is Error => m instanceof Error);
    const text = msg
      .filter((m) => !(m instanceof Error))
      .map((m) => (typeof m === "string" ? m : JSON.stringify(m)))
      .join(" ");
    if (err) log[fn]({ err }, text || err.message);
    else log[fn](text);
  };
  return {
    debug: () => undefined,
    info: (...m: unknown[]) => {
      if (level === LogLevel.INFO || level === LogLevel.DEBUG) emit("info", m);
    },
    warn: (...m: unknown[]) => {
      if (level !== LogLevel.ERROR) emit("warn", m);
    },
    error: (...m: unknown[]) => emit("error", m),
    setLevel: (l: LogLevel) => {
      level = l === LogLevel.DEBUG ? LogLevel.INFO : l;
    },
    getLevel: () => level,
    setName: () => undefined,
  };
}
