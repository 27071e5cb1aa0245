import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { App, HTTPModuleFunctions, HTTPReceiver, LogLevel, type Logger as BoltLogger, type types, type webApi } from "@slack/bolt";
import { ConfigError, type Logger } from "@iaas/runtime";
import { IaasError } from "@iaas/contracts";
import type { GatewayConfig } from "./config.js";
import type { Block } from "./blocks.js";
import type { SlackMessage } from "./reply.js";

/**
 * Bolt 5.1's HTTPReceiver reads `body.ssl_check` right after parsing, without checking that the
 * body is an object: a correctly signed `payload=null` (or `payload=1`, or a JSON body `null`)
 * throws inside its request handler, an unhandled rejection that ends the process. The receiver
 * calls `parseHTTPRequestBody` through this shared exports object, so refusing non-objects there
 * turns such a request into Bolt's own 400 "Malformed request body". Found by the bad-input corpus.
 */
function guardBoltBodyParser(): void {
  const fns = HTTPModuleFunctions as unknown as { parseHTTPRequestBody: ((req: unknown) => unknown) & { iaasGuarded?: boolean } };
  const parse = fns.parseHTTPRequestBody;
  if (parse.iaasGuarded) return;
  const guarded = Object.assign(
    (req: unknown): unknown => {
      const body = parse(req);
      if (body === null || typeof body !== "object" || Array.isArray(body)) throw new Error("the request body is not an object");
      return body;
    },
    { iaasGuarded: true },
  );
  fns.parseHTTPRequestBody = guarded;
}

/** Where Slack's HTTP requests arrive (the app manifest points `/iaas` and interactivity here). */
export const SLACK_EVENTS_PATH = "/slack/events";

export type CommandListener = (body: unknown, ack: (m: SlackMessage) => Promise<void>, meta: { retryNum?: number | undefined }) => Promise<void>;
/** A verified `block_actions` payload (a button click), already acked. */
export type ActionListener = (body: unknown) => Promise<void>;

export interface SlackTransport {
  /** HTTP: the bound port. Socket Mode: undefined (no listening socket). */
  start(): Promise<{ port: number | undefined }>;
  stop(): Promise<void>;
  /** chat.postMessage as the bot; undefined without SLACK_BOT_TOKEN. */
  postMessage?: (channel: string, text: string, blocks?: Block[]) => Promise<void>;
  /** usergroups.list with members, enabled groups only (scope usergroups:read); undefined without SLACK_BOT_TOKEN. */
  listUserGroups?: () => Promise<unknown>;
}

/**
 * The Bolt app: transport only (signature check, replay window, ack plumbing); what a command
 * means is the listener's business.
 *
 * - HTTP (default): `POST /slack/events`, verified by Bolt's HTTPReceiver with the signing
 *   secret; a bad signature, a timestamp older than 5 minutes or missing headers get 401 before
 *   any listener runs.
 * - Socket Mode (SLACK_APP_TOKEN set): Bolt calls `apps.connections.open` with the app-level
 *   token and opens the WebSocket it answers, so no public endpoint is needed; payloads arrive over
 *   that authenticated connection, reach the same listeners and are acked over the socket. No
 *   signature to check (the signing secret is not used). Bolt hands the App's `clientOptions` to
 *   the Socket Mode client, so SLACK_API_URL applies to `apps.connections.open` too: the tests run
 *   this branch against the Slack stand-in (test/socket-mode.test.ts, test/e2e/socket-mode.test.ts).
 *   When Slack asks it to (`disconnect`) or the socket drops, the client opens a new connection.
 *
 * Without SLACK_BOT_TOKEN the app runs on an empty `authorize` (replies then go only to
 * response URLs, which need no token). With one, `deferInitialization` moves Bolt's auth.test
 * from the constructor (an unhandled rejection when it fails) into `start`, where a refused
 * token stops the service with a message naming the variable.
 */
export function createSlackTransport(config: GatewayConfig, log: Logger, onCommand: CommandListener, onAction: ActionListener): SlackTransport {
  guardBoltBodyParser();
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

  const socketMode = config.SLACK_APP_TOKEN !== undefined;
  const app = socketMode
    ? new App({ ...common, socketMode: true, appToken: config.SLACK_APP_TOKEN })
    : new App({
        ...common,
        receiver: new HTTPReceiver({
          signingSecret: config.SLACK_SIGNING_SECRET,
          endpoints: SLACK_EVENTS_PATH,
          // Ack first, then keep working (Bolt's default): Slack wants the answer within 3 s.
          processBeforeResponse: false,
          logger,
          logLevel: LogLevel.INFO,
        }),
      });

  // Every slash command routed to this app; the app manifest declares only `/iaas`.
  app.command(/.*/, async ({ body, ack, context }) => {
    // Our Block type is the subset of Block Kit we build (blocks.ts); Bolt's is the full union.
    await onCommand(body, async (m) => ack(m as Parameters<typeof ack>[0]), { retryNum: context.retryNum });
  });
  // Confirm / Cancel clicks arrive on the same signed endpoint (interactivity URL). Slack wants an
  // empty 200 within 3 s; the answer goes to the payload's response_url.
  app.action({ type: "block_actions", action_id: /^iaas\./ }, async ({ body, ack }) => {
    await ack();
    await onAction(body);
  });
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
      await app.stop().catch((err: unknown) => log.debug({ err }, "stopping the Slack app"));
    },
    ...(config.SLACK_BOT_TOKEN
      ? {
          postMessage: async (channel: string, text: string, blocks?: Block[]) => {
            // Our Block type is the subset of Block Kit we build (blocks.ts); Bolt's is the full union.
            await app.client.chat.postMessage({ channel, text, ...(blocks ? { blocks: blocks as unknown as types.KnownBlock[] } : {}) });
          },
          // https://api.slack.com/methods/usergroups.list: one call answers every group with its members.
          listUserGroups: () => app.client.usergroups.list({ include_users: true, include_disabled: false }),
        }
      : {}),
  };
}

function tokenError(err: unknown): Error {
  const e = err as { code?: string; data?: { error?: string } };
  if (e?.code === "slack_webapi_platform_error") {
    return new ConfigError(["SLACK_BOT_TOKEN"], `invalid configuration: SLACK_BOT_TOKEN: Slack's auth.test refused it (${e.data?.error ?? "error"})`);
  }
  return new IaasError("IAAS_UNAVAILABLE", "Slack's Web API could not be reached to check SLACK_BOT_TOKEN (auth.test)", { cause: err });
}

/**
 * A refused `apps.connections.open` (invalid_auth, not_authed, a revoked token…) fails at once
 * rather than being retried by the Socket Mode client; it names the variable, never the token.
 */
function appTokenError(err: unknown): Error {
  const e = err as { code?: string; data?: { error?: string } };
  if (e?.code === "slack_webapi_platform_error") {
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
