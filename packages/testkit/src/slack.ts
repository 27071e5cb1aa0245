import { createHmac, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { acceptWebSocket, refuseUpgrade, type WebSocketPeer } from "./websocket.js";

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

/** The fields Slack sends for a slash command: a form body over HTTP, a JSON `payload` in a Socket Mode envelope. */
export function slashCommandPayload(fields: SlashCommandFields): Record<string, string> {
  return {
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
  };
}

/** The form body Slack sends for a slash command. */
export function slashCommandBody(fields: SlashCommandFields): string {
  return new URLSearchParams(slashCommandPayload(fields)).toString();
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

export interface SlackStandInOptions {
  /**
   * Turns on the Socket Mode side: `apps.connections.open` called with this app-level token
   * (`Authorization: Bearer …`) answers a one-use `ws://` URL on this server, where the app is
   * greeted with `hello` and then gets the envelopes a test sends.
   */
  appToken?: string;
}

/** What the app sent back over the socket for an envelope: `{ envelope_id, payload? }`. */
export interface SocketAck {
  envelope_id: string;
  /** The response payload (a slash command's ephemeral answer); undefined for a bare ack. */
  payload: Record<string, unknown> | undefined;
  at: number;
}

/** The envelope types the gateway takes: slash commands and interactivity (button clicks). */
export type SocketEnvelopeType = "slash_commands" | "interactive";

/**
 * Slack's side of the wire, for tests and local runs: records Web API calls under `/api/<method>`
 * and posts to response URLs it hands out under `/response/<id>`. The only stand-in in the tests.
 *
 * With an `appToken` it also plays Socket Mode (https://api.slack.com/apis/socket-mode): the app
 * calls `apps.connections.open` with its app-level token, connects to the WebSocket URL it gets,
 * is sent `hello`, and then receives envelopes (`sendEnvelope`) that it acks over the socket with
 * the same `envelope_id` (`socketAcks`). `disconnectSockets` is Slack's routine "please reconnect"
 * and `dropSockets` a connection lost without a word; `connectionsOpenFailure` makes
 * `apps.connections.open` fail as in a Slack outage (HTTP 503, or a cut connection).
 */
export class SlackStandIn {
  readonly calls: RecordedCall[] = [];
  /** Every ack received over Socket Mode, in arrival order. */
  readonly socketAcks: SocketAck[] = [];
  /** WebSocket upgrades refused (no ticket, a used or unknown one): none of them got `hello`. */
  socketRefusals = 0;
  /** Connections greeted with `hello` since the start (a reconnect adds one). */
  socketConnects = 0;
  private server: Server;
  private baseUrl = "";
  private readonly appToken: string | undefined;
  /** One-use tickets handed out by apps.connections.open, as Slack's `wss://…/link/?ticket=…`. */
  private readonly tickets = new Set<string>();
  private readonly sockets = new Set<{ peer: WebSocketPeer; tcp: Duplex }>();
  /** When set, response_url posts answer with this status (to test fallbacks). */
  responseUrlStatus = 200;
  /**
   * The workspace's user groups, as `usergroups.list` answers them: id, members, and whether the
   * group is disabled (Slack then sets `date_delete` and leaves it out unless `include_disabled`).
   */
  usergroups: { id: string; users: string[]; disabled?: boolean }[] = [];
  /** When set, `chat.postEphemeral` answers `{ ok: false, error }` (`channel_not_found`, to test the DM fallback). */
  postEphemeralError: string | undefined;
  /** When set, `usergroups.list` answers `{ ok: false, error }` (to test a failing refresh). */
  usergroupsError: string | undefined;
  /**
   * When set, `apps.connections.open` fails as Slack does in an outage (the call is still recorded):
   * `"http_503"` answers HTTP 503 Service Unavailable, `"drop"` cuts the TCP connection without an
   * answer (a network failure). Back to `undefined`, it hands out URLs again.
   */
  connectionsOpenFailure: "http_503" | "drop" | undefined;
  /** The next this many `chat.postMessage` calls answer `{ ok: false, error: "internal_error" }` (still recorded). */
  postMessageFailures = 0;
  private readonly listeners = new Set<(call: RecordedCall, answer: unknown) => void>();

  private constructor(opts: SlackStandInOptions) {
    this.appToken = opts.appToken;
    this.server = createServer((req, res) => {
      void this.handle(req).then(
        (answer) => {
          if (answer === "drop") {
            req.socket.destroy();
            return;
          }
          const [status, out] = answer;
          res.writeHead(status, { "content-type": "application/json" });
          res.end(JSON.stringify(out));
        },
        () => {
          res.writeHead(500);
          res.end();
        },
      );
    });
    this.server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
  }

  static async start(opts: SlackStandInOptions = {}): Promise<SlackStandIn> {
    const s = new SlackStandIn(opts);
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

  /**
   * Calls `fn` with every Web API call and response_url post as it is recorded, with what the
   * stand-in answered (the `ts` of a `chat.postMessage`); returns the function that stops it.
   * The local web console shows Slack's side of the conversation from these.
   */
  onCall(fn: (call: RecordedCall, answer: unknown) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** The origin (`http://127.0.0.1:<port>`) of this stand-in. */
  get origin(): string {
    return this.baseUrl;
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
    return this.until(() => predicate(this.calls), "condition", timeoutMs);
  }

  private async until<T>(probe: () => T | undefined | false, what: string, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = probe();
      if (v) return v;
      if (Date.now() > deadline) {
        const seen = { calls: this.calls, socketAcks: this.socketAcks };
        throw new Error(`Slack stand-in: ${what} not met in ${timeoutMs} ms; seen: ${JSON.stringify(seen, null, 1).slice(0, 3000)}`);
      }
      await sleep(20);
    }
  }

  /**
   * https://api.slack.com/methods/apps.connections.open: only an app-level token (the one this
   * stand-in was given) gets a URL; Slack's error names for the rest.
   */
  private connectionsOpen(authorization: string | undefined): unknown {
    const token = /^Bearer (.+)$/.exec(authorization ?? "")?.[1];
    if (!token) return { ok: false, error: "not_authed" };
    if (!token.startsWith("xapp-")) return { ok: false, error: "not_allowed_token_type" };
    if (this.appToken === undefined || token !== this.appToken) return { ok: false, error: "invalid_auth" };
    const ticket = randomUUID();
    this.tickets.add(ticket);
    return { ok: true, url: `${this.baseUrl.replace(/^http/, "ws")}/link/?ticket=${ticket}&app_id=A0001` };
  }

  /** The WebSocket side of Socket Mode: only with a ticket from apps.connections.open, each used once. */
  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? "/", this.baseUrl);
    const ticket = url.searchParams.get("ticket") ?? "";
    if (url.pathname !== "/link/" || !this.tickets.delete(ticket)) {
      this.socketRefusals += 1;
      refuseUpgrade(socket, 401, "Unauthorized");
      return;
    }
    const conn = { peer: undefined as unknown as WebSocketPeer, tcp: socket };
    const peer = acceptWebSocket(req, socket, head, () => ({
      onMessage: (text) => {
        let msg: { envelope_id?: unknown; payload?: unknown };
        try {
          msg = JSON.parse(text) as typeof msg;
        } catch {
          return;
        }
        if (typeof msg.envelope_id !== "string") return;
        const payload = msg.payload && typeof msg.payload === "object" && Object.keys(msg.payload).length > 0 ? (msg.payload as Record<string, unknown>) : undefined;
        this.socketAcks.push({ envelope_id: msg.envelope_id, payload, at: Date.now() });
      },
      onClose: () => {
        this.sockets.delete(conn);
      },
    }));
    if (!peer) return;
    conn.peer = peer;
    this.sockets.add(conn);
    this.socketConnects += 1;
    peer.send(
      JSON.stringify({
        type: "hello",
        num_connections: this.socketsOpen,
        debug_info: { host: "slack-stand-in", approximate_connection_time: 18_060 },
        connection_info: { app_id: "A0001" },
      }),
    );
  }

  /** Open Socket Mode connections (greeted, not closed). */
  get socketsOpen(): number {
    return [...this.sockets].filter((s) => s.peer.open).length;
  }

  /**
   * Sends an envelope to the app over its newest open connection, as Slack does with one of an
   * app's connections; returns the envelope id to find the ack by. Throws when no app is connected
   * (Slack would then fail the command for the user, with nothing sent).
   */
  sendEnvelope(type: SocketEnvelopeType, payload: Record<string, unknown>, opts: { envelopeId?: string } = {}): string {
    const conn = [...this.sockets].reverse().find((s) => s.peer.open);
    if (!conn) throw new Error("Slack stand-in: no Socket Mode connection is open");
    const envelope_id = opts.envelopeId ?? randomUUID();
    // Slack sets accepts_response_payload for slash commands (the ack may carry the reply) and
    // for interactivity only where a response is allowed (not block_actions).
    conn.peer.send(JSON.stringify({ envelope_id, type, payload, accepts_response_payload: type === "slash_commands" }));
    return envelope_id;
  }

  /** Waits for the app's ack of an envelope. */
  ackOf(envelopeId: string, timeoutMs = 15_000): Promise<SocketAck> {
    const find = () => this.socketAcks.find((a) => a.envelope_id === envelopeId);
    return this.until(find, `the ack of envelope ${envelopeId}`, timeoutMs);
  }

  /** Slack's routine reconnect request (`{"type":"disconnect"}`): the app closes this socket and opens a new one. */
  disconnectSockets(reason = "refresh_requested"): void {
    for (const s of this.sockets) if (s.peer.open) s.peer.send(JSON.stringify({ type: "disconnect", reason, debug_info: { host: "slack-stand-in" } }));
  }

  /** The TCP connections of every socket cut without a close frame (a network failure). */
  dropSockets(): void {
    for (const s of this.sockets) s.tcp.destroy();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.tcp.destroy();
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

  /** Views opened or published so far, for `view_id`s as Slack hands them out. */
  private views = 0;

  /**
   * https://api.slack.com/methods/views.open (and .update, .publish): the view back with an id and
   * hash, as Slack answers; a view over Slack's 100 blocks, or views.open without a trigger_id, is
   * refused as Slack refuses it.
   */
  private viewAnswer(method: string, body: Record<string, unknown>): unknown {
    let view: { blocks?: unknown[] } & Record<string, unknown>;
    try {
      view = (typeof body.view === "string" ? JSON.parse(body.view) : body.view) as typeof view;
    } catch {
      return { ok: false, error: "invalid_arguments" };
    }
    if (!view || typeof view !== "object") return { ok: false, error: "invalid_arguments" };
    if (method === "views.open" && !body.trigger_id) return { ok: false, error: "invalid_trigger_id" };
    if ((view.blocks?.length ?? 0) > 100) return { ok: false, error: "invalid_arguments", response_metadata: { messages: ["[ERROR] no more than 100 items allowed [json-pointer:/view/blocks]"] } };
    this.views += 1;
    return { ok: true, view: { ...view, id: typeof body.view_id === "string" ? body.view_id : `V${String(this.views).padStart(8, "0")}`, hash: `${Date.now()}.${this.views}` } };
  }

  private async handle(req: IncomingMessage): Promise<[number, unknown] | "drop"> {
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
      const call = { method: "response_url", path, body, at: Date.now() };
      this.calls.push(call);
      const answer: [number, unknown] = [this.responseUrlStatus, this.responseUrlStatus === 200 ? { ok: true } : { ok: false, error: "expired_url" }];
      this.tell(call, answer[1]);
      return answer;
    }
    if (path.startsWith("/api/")) {
      const method = path.slice("/api/".length);
      const call = { method, path, body, at: Date.now() };
      this.calls.push(call);
      const answer = this.answer(method, body, req);
      if (answer !== "drop") this.tell(call, answer[1]);
      return answer;
    }
    return [404, { ok: false, error: "unknown_path" }];
  }

  private tell(call: RecordedCall, answer: unknown): void {
    for (const fn of this.listeners) {
      try {
        fn(call, answer);
      } catch {
        // a listener's failure is its own
      }
    }
  }

  private answer(method: string, body: Record<string, unknown>, req: IncomingMessage): [number, unknown] | "drop" {
    {
      switch (method) {
        case "auth.test":
          return [200, { ok: true, url: "https://example.slack.com/", team: "example", user: "iaas", team_id: "T0001", user_id: "UBOT", bot_id: "BBOT" }];
        case "chat.postMessage":
          if (this.postMessageFailures > 0) {
            this.postMessageFailures -= 1;
            return [200, { ok: false, error: "internal_error" }];
          }
          return [200, { ok: true, channel: body.channel, ts: `${Date.now() / 1000}`, message: { text: body.text } }];
        case "chat.postEphemeral":
          if (this.postEphemeralError !== undefined) return [200, { ok: false, error: this.postEphemeralError }];
          return [200, { ok: true, message_ts: `${Date.now() / 1000}` }];
        case "usergroups.list":
          return [200, this.usergroupsList(body)];
        case "views.open":
        case "views.update":
        case "views.publish":
          return [200, this.viewAnswer(method, body)];
        case "apps.connections.open":
          if (this.connectionsOpenFailure === "drop") return "drop";
          if (this.connectionsOpenFailure === "http_503") return [503, { ok: false, error: "service_unavailable" }];
          return [200, this.connectionsOpen(req.headers.authorization)];
        default:
          return [200, { ok: true }];
      }
    }
  }
}
