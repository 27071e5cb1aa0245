import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { blockActionsBody, postSigned, slashCommandBody, type RecordedCall, type SlackStandIn } from "./slack.js";

/** Someone the console can act as. */
export interface ConsolePerson {
  id: string;
  /** Slack's `user_name` (a handle). */
  name: string;
  /** What the picker shows. */
  label: string;
}

/** The people `npm start`'s console offers: the local admin (IAAS_ADMINS), a plain user and a teammate of theirs. */
export const CONSOLE_PEOPLE: ConsolePerson[] = [
  { id: "U0001", name: "admin", label: "Local admin (U0001, in IAAS_ADMINS)" },
  { id: "U0002", name: "pat", label: "Pat, a plain user (U0002, team S0DEMO)" },
  { id: "U0003", name: "sam", label: "Sam, Pat's teammate (U0003, team S0DEMO)" },
];

export interface SlackConsoleOptions {
  slack: SlackStandIn;
  /** The gateway's Slack endpoint (`http://127.0.0.1:3000/slack/events`). */
  gatewayUrl: string;
  /** The signing secret the gateway checks. */
  secret: string;
  /** Default 0 (any free port); always on 127.0.0.1. */
  port?: number;
  people?: ConsolePerson[];
  /** The channel the console's commands come from (default C0001, `#iaas`). */
  channel?: { id: string; name: string };
}

/** A message as the page shows it. */
export interface ConsoleMessage {
  id: string;
  /** `command`: what the person typed; the rest came from the app. */
  source: "command" | "ack" | "response_url" | "chat.postMessage" | "chat.postEphemeral" | "error";
  channel: string;
  ts: string;
  /** Who typed it (command), or who alone sees it (ephemeral). */
  user?: string;
  ephemeral: boolean;
  text: string;
  blocks: unknown[];
  edited?: boolean;
}

export type ConsoleEvent = { kind: "message"; message: ConsoleMessage } | { kind: "replace"; message: ConsoleMessage } | { kind: "delete"; id: string };

interface Origin {
  /** The message a response_url post with replace_original / delete_original acts on. */
  messageId: string | undefined;
  user: string;
  /** Posts that came in before the ack was shown, held to keep the order. */
  held: RecordedCall[] | undefined;
}

const assets = fileURLToPath(new URL("../console/", import.meta.url));
const ASSET_TYPES: Record<string, string> = { "index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8", "render.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8" };
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * A local web page that plays a Slack channel with the app in it, for `npm start` without Slack:
 * what a person types is sent to the gateway as Slack sends a slash command (form body, v0
 * signature, timestamp, trigger_id, a response_url on the stand-in), button clicks as signed
 * `block_actions`, and what the app sends back (the ack, response_url posts, chat.postMessage,
 * chat.postEphemeral, chat.update) is streamed to the page as server-sent events, in order.
 * Listens on 127.0.0.1 only, answers only requests addressed to that host, and takes only JSON
 * posts (a page elsewhere cannot make a browser send them without asking).
 */
export class SlackConsole {
  readonly events: ConsoleEvent[] = [];
  /** What the console sent the gateway (the signed form bodies) and the HTTP status it answered, in order. */
  readonly sent: { body: string; status: number | undefined }[] = [];
  private readonly messages = new Map<string, ConsoleMessage>();
  private readonly origins = new Map<string, Origin>();
  private readonly streams = new Set<ServerResponse>();
  private readonly people: ConsolePerson[];
  private readonly channel: { id: string; name: string };
  private server: Server;
  private stopListening: () => void;
  private port = 0;
  private n = 0;

  private constructor(private readonly opts: SlackConsoleOptions) {
    this.people = opts.people ?? CONSOLE_PEOPLE;
    this.channel = opts.channel ?? { id: "C0001", name: "iaas" };
    this.stopListening = opts.slack.onCall((call, answer) => this.onCall(call, answer));
    this.server = createServer((req, res) => {
      void this.handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
  }

  static async start(opts: SlackConsoleOptions): Promise<SlackConsole> {
    const c = new SlackConsole(opts);
    await new Promise<void>((resolve, reject) => {
      c.server.once("error", reject);
      c.server.listen(opts.port ?? 0, "127.0.0.1", resolve);
    });
    c.port = (c.server.address() as AddressInfo).port;
    return c;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/`;
  }

  async close(): Promise<void> {
    this.stopListening();
    for (const s of this.streams) s.end();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private ts(): string {
    return (Date.now() / 1000).toFixed(6);
  }

  private emit(e: ConsoleEvent): void {
    if (e.kind === "delete") this.messages.delete(e.id);
    else this.messages.set(e.message.id, e.message);
    this.events.push(e);
    const line = `data: ${JSON.stringify(e)}\n\n`;
    for (const s of this.streams) s.write(line);
  }

  private add(m: Omit<ConsoleMessage, "id">): ConsoleMessage {
    const message = { id: `m${++this.n}`, ...m };
    this.emit({ kind: "message", message });
    return message;
  }

  private fromApp(source: ConsoleMessage["source"], body: Record<string, unknown>, extra: { channel: string; user?: string; ephemeral: boolean; ts?: string }): Omit<ConsoleMessage, "id"> {
    return {
      source,
      channel: extra.channel,
      ts: extra.ts ?? this.ts(),
      ...(extra.user ? { user: extra.user } : {}),
      ephemeral: extra.ephemeral,
      text: typeof body.text === "string" ? body.text : "",
      blocks: blocksOf(body.blocks),
    };
  }

  private onCall(call: RecordedCall, answer: unknown): void {
    const b = call.body;
    switch (call.method) {
      case "response_url": {
        const origin = this.origins.get(call.path);
        if (origin?.held) {
          origin.held.push(call);
          return;
        }
        this.responsePost(call, origin);
        return;
      }
      case "chat.postMessage": {
        const ts = (answer as { ts?: unknown } | undefined)?.ts;
        if ((answer as { ok?: unknown } | undefined)?.ok !== true) return;
        this.add(this.fromApp("chat.postMessage", b, { channel: String(b.channel ?? ""), ephemeral: false, ...(typeof ts === "string" ? { ts } : {}) }));
        return;
      }
      case "chat.postEphemeral":
        if ((answer as { ok?: unknown } | undefined)?.ok !== true) return;
        this.add(this.fromApp("chat.postEphemeral", b, { channel: String(b.channel ?? ""), user: String(b.user ?? ""), ephemeral: true }));
        return;
      case "chat.update": {
        const old = [...this.messages.values()].find((m) => m.source === "chat.postMessage" && m.channel === b.channel && m.ts === b.ts);
        if (old) this.emit({ kind: "replace", message: { ...old, text: typeof b.text === "string" ? b.text : old.text, blocks: b.blocks === undefined ? old.blocks : blocksOf(b.blocks), edited: true } });
        return;
      }
      default:
        return;
    }
  }

  /** A response_url post, as Slack applies it: replace or delete the message it came from, or a new message. */
  private responsePost(call: RecordedCall, origin: Origin | undefined): void {
    const b = call.body;
    const yes = (v: unknown) => v === true || v === "true";
    const target = origin?.messageId !== undefined ? this.messages.get(origin.messageId) : undefined;
    if (yes(b.delete_original)) {
      if (target) this.emit({ kind: "delete", id: target.id });
      return;
    }
    const ephemeral = b.response_type !== "in_channel";
    const user = origin?.user;
    const next = this.fromApp("response_url", b, { channel: this.channel.id, ephemeral, ...(user ? { user } : {}) });
    if (yes(b.replace_original) && target) {
      this.emit({ kind: "replace", message: { ...next, id: target.id, ts: target.ts } });
      return;
    }
    this.add(next);
  }

  private person(id: unknown): ConsolePerson {
    return this.people.find((p) => p.id === id) ?? this.people[0]!;
  }

  /** What the person typed, sent as Slack sends a slash command. */
  private async command(input: { text?: unknown; user?: unknown }): Promise<unknown> {
    const typed = String(input.text ?? "").trim();
    const who = this.person(input.user);
    const m = /^(\/[a-z0-9_-]+)(?:\s+([\s\S]*))?$/i.exec(typed);
    this.add({ source: "command", channel: this.channel.id, ts: this.ts(), user: who.id, ephemeral: false, text: typed, blocks: [] });
    if (!m || m[1] !== "/iaas") {
      this.add({ source: "error", channel: this.channel.id, ts: this.ts(), user: who.id, ephemeral: true, text: `Only \`/iaas …\` commands go to the app here (try \`/iaas help\`).`, blocks: [] });
      return { ok: false };
    }
    const responseUrl = this.opts.slack.responseUrl();
    const origin: Origin = { messageId: undefined, user: who.id, held: [] };
    this.origins.set(new URL(responseUrl).pathname, origin);
    const body = slashCommandBody({
      text: (m[2] ?? "").trim(),
      command: m[1],
      user_id: who.id,
      user_name: who.name,
      channel_id: this.channel.id,
      response_url: responseUrl,
      trigger_id: `${Date.now()}.1.${randomUUID()}`,
    });
    await this.post(body, origin, "/iaas");
    return { ok: true };
  }

  /** A button click, as Slack sends it: a signed block_actions payload with a fresh response_url. */
  private async action(input: { messageId?: unknown; blockIndex?: unknown; actionId?: unknown; user?: unknown }): Promise<unknown> {
    const message = this.messages.get(String(input.messageId));
    const block = message?.blocks[Number(input.blockIndex)] as { type?: string; block_id?: string; elements?: unknown[]; accessory?: unknown } | undefined;
    const candidates = (block?.type === "actions" ? (block.elements ?? []) : [block?.accessory]) as ({ type?: string; action_id?: string; value?: string; text?: unknown; style?: string } | undefined)[];
    const button = candidates.find((e) => e?.type === "button" && e.action_id === input.actionId);
    if (!message || !block || !button) return { ok: false, error: "no such button" };
    const who = this.person(input.user);
    const responseUrl = this.opts.slack.responseUrl();
    const origin: Origin = { messageId: message.id, user: who.id, held: undefined };
    this.origins.set(new URL(responseUrl).pathname, origin);
    const now = this.ts();
    const payload: Record<string, unknown> = {
      type: "block_actions",
      user: { id: who.id, username: who.name, name: who.name, team_id: "T0001" },
      api_app_id: "A0001",
      token: "deprecated-verification-token",
      container: { type: "message", message_ts: message.ts, channel_id: message.channel, is_ephemeral: message.ephemeral },
      trigger_id: `${Date.now()}.1.${randomUUID()}`,
      team: { id: "T0001", domain: "example" },
      enterprise: null,
      is_enterprise_install: false,
      channel: { id: message.channel, name: message.channel === this.channel.id ? this.channel.name : message.channel },
      // Slack includes the message for messages in the channel, not for ephemeral ones.
      ...(message.ephemeral ? {} : { message: { type: "message", user: "UBOT", bot_id: "BBOT", ts: message.ts, text: message.text, blocks: message.blocks } }),
      state: { values: {} },
      response_url: responseUrl,
      actions: [
        {
          type: "button",
          action_id: button.action_id,
          block_id: block.block_id ?? randomUUID().slice(0, 5),
          text: button.text,
          ...(button.value !== undefined ? { value: button.value } : {}),
          ...(button.style ? { style: button.style } : {}),
          action_ts: now,
        },
      ],
    };
    await this.post(blockActionsBody(payload), origin, "the button");
    return { ok: true };
  }

  /** Posts to the gateway, shows the ack (for a slash command), then what came in meanwhile. */
  private async post(body: string, origin: Origin, what: string): Promise<void> {
    const record: { body: string; status: number | undefined } = { body, status: undefined };
    this.sent.push(record);
    try {
      const res = await postSigned(this.opts.gatewayUrl, body, { secret: this.opts.secret });
      record.status = res.status;
      if (res.status !== 200) {
        // Slack tells the person that much and no more.
        this.add({ source: "error", channel: this.channel.id, ts: this.ts(), user: origin.user, ephemeral: true, text: `${what} failed with the error "http_service_error" (HTTP ${res.status})`, blocks: [] });
      } else if (origin.held && res.json && typeof res.json === "object" && (typeof (res.json as { text?: unknown }).text === "string" || Array.isArray((res.json as { blocks?: unknown }).blocks))) {
        const ack = res.json as Record<string, unknown>;
        const shown = this.add(this.fromApp("ack", ack, { channel: this.channel.id, user: origin.user, ephemeral: ack.response_type !== "in_channel" }));
        origin.messageId = shown.id;
      }
    } catch (err) {
      this.add({ source: "error", channel: this.channel.id, ts: this.ts(), user: origin.user, ephemeral: true, text: `${what} failed with the error "dispatch_failed" (${(err as Error).message})`, blocks: [] });
    } finally {
      const held = origin.held ?? [];
      origin.held = undefined;
      for (const call of held) this.responsePost(call, origin);
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Loopback only, and only for requests addressed to it (no DNS rebinding).
    const host = req.headers.host ?? "";
    if (host !== `127.0.0.1:${this.port}` && host !== `localhost:${this.port}`) {
      res.writeHead(421, { "content-type": "text/plain" });
      res.end("misdirected request\n");
      return;
    }
    const path = new URL(req.url ?? "/", this.url).pathname;
    const headers = { "content-security-policy": CSP, "x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "cache-control": "no-store" };
    if (req.method === "GET" && path === "/events") {
      res.writeHead(200, { ...headers, "content-type": "text/event-stream", connection: "keep-alive" });
      for (const e of this.events) res.write(`data: ${JSON.stringify(e)}\n\n`);
      this.streams.add(res);
      req.on("close", () => this.streams.delete(res));
      return;
    }
    if (req.method === "GET" && path === "/people") {
      res.writeHead(200, { ...headers, "content-type": "application/json" });
      res.end(JSON.stringify({ people: this.people, channel: this.channel }));
      return;
    }
    if (req.method === "GET") {
      const name = path === "/" ? "index.html" : path.slice(1);
      const type = ASSET_TYPES[name];
      if (!type) {
        res.writeHead(404, { ...headers, "content-type": "text/plain" });
        res.end("not found\n");
        return;
      }
      res.writeHead(200, { ...headers, "content-type": type });
      res.end(await readFile(`${assets}${name}`));
      return;
    }
    if (req.method === "POST" && (path === "/command" || path === "/action")) {
      if (!(req.headers["content-type"] ?? "").startsWith("application/json")) {
        res.writeHead(415, { ...headers, "content-type": "text/plain" });
        res.end("JSON only\n");
        return;
      }
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      let input: Record<string, unknown>;
      try {
        input = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
      } catch {
        res.writeHead(400, { ...headers, "content-type": "text/plain" });
        res.end("bad JSON\n");
        return;
      }
      const out = path === "/command" ? await this.command(input) : await this.action(input);
      res.writeHead(200, { ...headers, "content-type": "application/json" });
      res.end(JSON.stringify(out));
      return;
    }
    res.writeHead(405, { ...headers, "content-type": "text/plain" });
    res.end("method not allowed\n");
  }
}

function blocksOf(v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  // A form-encoded post carries blocks as a JSON string.
  if (typeof v === "string") {
    try {
      const parsed = JSON.parse(v) as unknown;
      return Array.isArray(parsed) ? parsed : [];
    } catch {
      return [];
    }
  }
  return [];
}
