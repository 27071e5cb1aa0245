import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { blockActionsBody, modalProblems, postSigned, slashCommandBody, type RecordedCall, type SlackStandIn, type StoredView } from "./slack.js";

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
  /** In the app's direct messages with this user (their DM pane), not in a channel. */
  dm?: string;
}

/**
 * What the page shows besides messages: a user's modal stack (bottom to top, Slack's view objects;
 * empty when closed) with the field errors of the last submission (`block_id` → message) or a
 * problem with the whole dialog, and a user's Home tab. A stack of `user` "" came from a trigger
 * the console did not hand out: it shows to whoever is acting.
 */
export type ConsoleEvent =
  | { kind: "message"; message: ConsoleMessage }
  | { kind: "replace"; message: ConsoleMessage }
  | { kind: "delete"; id: string }
  | { kind: "modal"; user: string; stack: Record<string, unknown>[]; errors: Record<string, string>; problem?: string }
  | { kind: "home"; user: string; view: Record<string, unknown> };

interface Origin {
  /** The message a response_url post with replace_original / delete_original acts on. */
  messageId: string | undefined;
  user: string;
  /** Where what comes back is shown: the channel, or the user's DM with the app. */
  channel: string;
  dm: string | undefined;
  /** Posts that came in before the ack was shown, held to keep the order. */
  held: RecordedCall[] | undefined;
}

const assets = fileURLToPath(new URL("../console/", import.meta.url));
/** Slack's words when an app does not answer an interaction well (the person sees no more than this). */
const TROUBLE = "We had some trouble connecting. Try again?";

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
  /** What the app answered the last block_suggestion of a view's external select (`viewId action_id`): a submission picks from these. */
  private readonly suggested = new Map<string, Record<string, unknown>[]>();
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
    else if (e.kind === "message" || e.kind === "replace") this.messages.set(e.message.id, e.message);
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
    const dm = this.opts.slack.dmUser(extra.channel);
    return {
      source,
      channel: extra.channel,
      ...(dm ? { dm } : {}),
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
        const a = answer as { ok?: unknown; ts?: unknown; channel?: unknown } | undefined;
        if (a?.ok !== true) return;
        // The answer's channel: a post to a user id lands in their DM with the app (D…).
        const channel = typeof a.channel === "string" ? a.channel : String(b.channel ?? "");
        this.add(this.fromApp("chat.postMessage", b, { channel, ephemeral: false, ...(typeof a.ts === "string" ? { ts: a.ts } : {}) }));
        return;
      }
      case "views.open":
      case "views.push":
      case "views.update":
      case "views.publish": {
        const a = answer as { ok?: unknown; view?: { id?: unknown } } | undefined;
        const stored = a?.ok === true && typeof a.view?.id === "string" ? this.opts.slack.view(a.view.id) : undefined;
        if (!stored) return;
        if (stored.type === "home") this.emit({ kind: "home", user: stored.user ?? "", view: stored.view });
        else this.showModals(stored.user);
        return;
      }
      case "chat.postEphemeral":
        if ((answer as { ok?: unknown } | undefined)?.ok !== true) return;
        this.add(this.fromApp("chat.postEphemeral", b, { channel: String(b.channel ?? ""), user: String(b.user ?? ""), ephemeral: true }));
        return;
      case "chat.update": {
        const channel = typeof b.channel === "string" && /^[UW]/.test(b.channel) ? this.opts.slack.dmChannel(b.channel) : b.channel;
        const old = [...this.messages.values()].find((m) => m.source === "chat.postMessage" && m.channel === channel && m.ts === b.ts);
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
    const next = this.fromApp("response_url", b, { channel: origin?.channel ?? this.channel.id, ephemeral, ...(user ? { user } : {}) });
    if (yes(b.replace_original) && target) {
      this.emit({ kind: "replace", message: { ...next, id: target.id, ts: target.ts } });
      return;
    }
    this.add(next);
  }

  private person(id: unknown): ConsolePerson {
    return this.people.find((p) => p.id === id) ?? this.people[0]!;
  }

  /** Where a person types or clicks: the channel, or their DM with the app (its Messages tab). */
  private where(user: string, pane: unknown): { channel: string; dm: string | undefined } {
    return pane === "dm" ? { channel: this.opts.slack.dmChannel(user), dm: user } : { channel: this.channel.id, dm: undefined };
  }

  /** Slack's own note to the person (not the app's), where they are. */
  private slackbot(at: { channel: string; dm: string | undefined }, user: string, text: string): void {
    this.add({ source: "error", channel: at.channel, ...(at.dm ? { dm: at.dm } : {}), ts: this.ts(), user, ephemeral: true, text, blocks: [] });
  }

  /** What the person typed, sent as Slack sends a slash command (from the channel or from their DM with the app). */
  private async command(input: { text?: unknown; user?: unknown; pane?: unknown }): Promise<unknown> {
    const typed = String(input.text ?? "").trim();
    const who = this.person(input.user);
    const at = this.where(who.id, input.pane);
    const m = /^(\/[a-z0-9_-]+)(?:\s+([\s\S]*))?$/i.exec(typed);
    this.add({ source: "command", channel: at.channel, ...(at.dm ? { dm: at.dm } : {}), ts: this.ts(), user: who.id, ephemeral: false, text: typed, blocks: [] });
    if (!m || m[1] !== "/iaas") {
      this.slackbot(at, who.id, `Only \`/iaas …\` commands go to the app here (try \`/iaas help\`).`);
      return { ok: false };
    }
    const responseUrl = this.opts.slack.responseUrl();
    const origin: Origin = { messageId: undefined, user: who.id, ...at, held: [] };
    this.origins.set(new URL(responseUrl).pathname, origin);
    const body = slashCommandBody({
      text: (m[2] ?? "").trim(),
      command: m[1],
      user_id: who.id,
      user_name: who.name,
      channel_id: at.channel,
      channel_name: at.dm ? "directmessage" : this.channel.name,
      response_url: responseUrl,
      trigger_id: this.opts.slack.trigger(who.id),
    });
    await this.post(body, origin, "/iaas");
    return { ok: true };
  }

  /** The person as Slack puts them in an interaction payload. */
  private userField(who: ConsolePerson): Record<string, unknown> {
    return { id: who.id, username: who.name, name: who.name, team_id: "T0001" };
  }

  /** The button `actionId` in block `blockIndex` of `blocks` (an actions block's, or a section's accessory). */
  private buttonIn(blocks: unknown, blockIndex: unknown, actionId: unknown) {
    const block = (Array.isArray(blocks) ? blocks[Number(blockIndex)] : undefined) as { type?: string; block_id?: string; elements?: unknown[]; accessory?: unknown } | undefined;
    const candidates = (block?.type === "actions" ? (block.elements ?? []) : [block?.accessory]) as ({ type?: string; action_id?: string; value?: string; text?: unknown; style?: string } | undefined)[];
    const button = candidates.find((e) => e?.type === "button" && e.action_id === actionId);
    return block && button ? { block, button } : undefined;
  }

  /**
   * A button click, as Slack sends it: a signed block_actions payload. On a message, with the
   * message's container and channel and a fresh response_url; in a modal or the Home tab, with the
   * view (its state as the page holds it), `container.type: view` and no response_url.
   */
  private async action(input: { messageId?: unknown; viewId?: unknown; blockIndex?: unknown; actionId?: unknown; user?: unknown; values?: unknown }): Promise<unknown> {
    const who = this.person(input.user);
    const now = this.ts();
    const common = { type: "block_actions", user: this.userField(who), api_app_id: "A0001", token: "deprecated-verification-token" };
    const team = { team: { id: "T0001", domain: "example" }, enterprise: null, is_enterprise_install: false };
    const act = (found: NonNullable<ReturnType<SlackConsole["buttonIn"]>>) => ({
      type: "button",
      action_id: found.button.action_id,
      block_id: found.block.block_id ?? randomUUID().slice(0, 5),
      text: found.button.text,
      ...(found.button.value !== undefined ? { value: found.button.value } : {}),
      ...(found.button.style ? { style: found.button.style } : {}),
      action_ts: now,
    });
    if (input.viewId !== undefined) {
      const stored = this.opts.slack.view(String(input.viewId));
      const found = stored && (stored.type === "home" || stored.open) ? this.buttonIn(stored.view.blocks, input.blockIndex, input.actionId) : undefined;
      if (!stored || !found) return { ok: false, error: "no such button" };
      const payload = {
        ...common,
        container: { type: "view", view_id: stored.id },
        trigger_id: this.opts.slack.trigger(who.id, stored.id),
        ...team,
        view: { ...stored.view, state: { values: this.stateOf(stored, input.values) } },
        actions: [act(found)],
      };
      const res = await this.send(blockActionsBody(payload));
      if (res.status !== 200 && stored.type === "modal") this.showModals(stored.user, {}, TROUBLE);
      if (res.status !== 200 && stored.type === "home") this.slackbot(this.where(who.id, "dm"), who.id, TROUBLE);
      return { ok: res.status === 200 };
    }
    const message = this.messages.get(String(input.messageId));
    const found = message ? this.buttonIn(message.blocks, input.blockIndex, input.actionId) : undefined;
    if (!message || !found) return { ok: false, error: "no such button" };
    const responseUrl = this.opts.slack.responseUrl();
    const origin: Origin = { messageId: message.id, user: who.id, channel: message.channel, dm: message.dm, held: undefined };
    this.origins.set(new URL(responseUrl).pathname, origin);
    const payload: Record<string, unknown> = {
      ...common,
      container: { type: "message", message_ts: message.ts, channel_id: message.channel, is_ephemeral: message.ephemeral },
      trigger_id: this.opts.slack.trigger(who.id),
      ...team,
      channel: { id: message.channel, name: message.dm ? "directmessage" : message.channel === this.channel.id ? this.channel.name : message.channel },
      // Slack includes the message for messages in the channel, not for ephemeral ones.
      ...(message.ephemeral ? {} : { message: { type: "message", user: "UBOT", bot_id: "BBOT", ts: message.ts, text: message.text, blocks: message.blocks } }),
      state: { values: {} },
      response_url: responseUrl,
      actions: [act(found)],
    };
    await this.post(blockActionsBody(payload), origin, "the button");
    return { ok: true };
  }

  /** A user's modal stack as it is now, with the errors of the last submission. */
  private showModals(user: string | undefined, errors: Record<string, string> = {}, problem?: string): void {
    this.emit({ kind: "modal", user: user ?? "", stack: this.opts.slack.modalStack(user).map((v) => v.view), errors, ...(problem ? { problem } : {}) });
  }

  /**
   * `state.values` as Slack sends them (https://api.slack.com/reference/interaction-payloads/views):
   * one entry per input block, `block_id` → `action_id` → the element's value in its own shape
   * (`value`, `selected_option`, `selected_user`), null when empty; `raw` is what the page holds
   * (`block_id` → `action_id` → the text or the option value).
   */
  private stateOf(stored: StoredView, raw: unknown): Record<string, Record<string, unknown>> {
    const given = (raw && typeof raw === "object" ? raw : {}) as Record<string, Record<string, unknown> | undefined>;
    const values: Record<string, Record<string, unknown>> = {};
    for (const b of (Array.isArray(stored.view.blocks) ? stored.view.blocks : []) as { type?: string; block_id?: string; element?: Record<string, unknown> }[]) {
      if (b.type !== "input" || !b.element || !b.block_id) continue;
      const e = b.element;
      const actionId = String(e.action_id ?? "");
      const v = given[b.block_id]?.[actionId];
      const value = typeof v === "string" && v !== "" ? v : null;
      values[b.block_id] = { [actionId]: this.elementState(stored, e, value) };
    }
    return values;
  }

  private elementState(stored: StoredView, e: Record<string, unknown>, value: string | null): Record<string, unknown> {
    const type = String(e.type);
    const pick = (options: unknown[]) => (value === null ? null : ((options as { value?: unknown }[]).find((o) => o?.value === value) ?? null));
    switch (type) {
      case "static_select":
        return { type, selected_option: pick(optionsOf(e)) };
      case "external_select":
        return { type, selected_option: pick([...(this.suggested.get(`${stored.id} ${String(e.action_id)}`) ?? []), ...(e.initial_option ? [e.initial_option] : [])]) };
      case "users_select":
        return { type, selected_user: value };
      default:
        // plain_text_input, number_input, email and url inputs: the text as typed.
        return { type, value };
    }
  }

  /**
   * A modal's submit (a signed view_submission, answered in its ack: close, `errors`, `update`,
   * `push`, `clear`) or its close (view_closed, sent only when the view asks with notify_on_close).
   */
  private async submitView(input: { viewId?: unknown; user?: unknown; values?: unknown; close?: unknown }): Promise<unknown> {
    const stored = this.opts.slack.view(String(input.viewId));
    if (!stored || stored.type !== "modal" || !stored.open) return { ok: false, error: "no such open view" };
    const who = this.person(stored.user ?? input.user);
    const view = { ...stored.view, state: { values: this.stateOf(stored, input.values) } };
    const base = { team: { id: "T0001", domain: "example" }, user: this.userField(who), api_app_id: "A0001", token: "deprecated-verification-token", is_enterprise_install: false, enterprise: null };
    if (input.close === true) {
      const cleared = stored.view.clear_on_close === true;
      if (cleared) this.opts.slack.clearViews(stored.user);
      else this.opts.slack.closeView(stored.id);
      this.showModals(stored.user);
      if (stored.view.notify_on_close === true) await this.send(blockActionsBody({ type: "view_closed", ...base, view, is_cleared: cleared }));
      return { ok: true };
    }
    const payload = { type: "view_submission", ...base, trigger_id: this.opts.slack.trigger(who.id, stored.id), view, response_urls: [] };
    const res = await this.send(blockActionsBody(payload));
    if (res.status !== 200) {
      this.showModals(stored.user, {}, TROUBLE);
      return { ok: false };
    }
    const answer = (res.json && typeof res.json === "object" ? res.json : {}) as { response_action?: unknown; errors?: unknown; view?: unknown };
    const next = typeof answer.view === "string" ? safeJson(answer.view) : answer.view;
    const wrong = (v: unknown) => (v && typeof v === "object" ? modalProblems(v as Record<string, unknown>) : ["missing required field: view"]);
    switch (answer.response_action) {
      case "errors": {
        const errors = Object.fromEntries(Object.entries(answer.errors && typeof answer.errors === "object" ? answer.errors : {}).map(([k, v]) => [k, String(v)]));
        const inputs = new Set(((stored.view.blocks ?? []) as { type?: string; block_id?: string }[]).filter((b) => b.type === "input").map((b) => b.block_id));
        const stray = Object.keys(errors).filter((k) => !inputs.has(k));
        // Slack takes errors for input blocks only; the console says which the app got wrong.
        this.showModals(stored.user, errors, stray.length ? `${TROUBLE} (the app answered errors for blocks that are not inputs: ${stray.join(", ")})` : undefined);
        return { ok: true };
      }
      case "update":
      case "push": {
        const problems = wrong(next);
        if (problems.length) {
          this.showModals(stored.user, {}, `${TROUBLE} (${problems.join("; ")})`);
          return { ok: false };
        }
        if (answer.response_action === "update") this.opts.slack.replaceView(stored.id, next as Record<string, unknown>);
        else if (this.opts.slack.modalStack(stored.user).length >= 3) {
          this.showModals(stored.user, {}, `${TROUBLE} (push_limit_reached: Slack stacks at most 3 views)`);
          return { ok: false };
        } else this.opts.slack.pushView(stored.id, next as Record<string, unknown>);
        break;
      }
      case "clear":
        this.opts.slack.clearViews(stored.user);
        break;
      default:
        this.opts.slack.closeView(stored.id);
    }
    this.showModals(stored.user);
    return { ok: true };
  }

  /** An external select's options, asked of the app as Slack does: a signed block_suggestion, answered in the ack. */
  private async suggest(input: { viewId?: unknown; actionId?: unknown; value?: unknown; user?: unknown; values?: unknown }): Promise<unknown> {
    const stored = this.opts.slack.view(String(input.viewId));
    const blocks = (stored && Array.isArray(stored.view.blocks) ? stored.view.blocks : []) as { block_id?: string; element?: { type?: string; action_id?: string }; accessory?: { type?: string; action_id?: string } }[];
    const block = blocks.find((b) => [b.element, b.accessory].some((e) => e?.type === "external_select" && e.action_id === input.actionId));
    if (!stored || !block) return { ok: false, error: "no such select" };
    const who = this.person(stored.user ?? input.user);
    const payload = {
      type: "block_suggestion",
      user: this.userField(who),
      container: { type: "view", view_id: stored.id },
      api_app_id: "A0001",
      token: "deprecated-verification-token",
      action_id: String(input.actionId),
      block_id: block.block_id,
      value: String(input.value ?? ""),
      team: { id: "T0001", domain: "example" },
      enterprise: null,
      is_enterprise_install: false,
      view: { ...stored.view, state: { values: this.stateOf(stored, input.values) } },
    };
    const res = await this.send(blockActionsBody(payload));
    const answer = (res.status === 200 && res.json && typeof res.json === "object" ? res.json : {}) as { options?: unknown; option_groups?: unknown };
    // Slack shows at most 100 options.
    const options = Array.isArray(answer.options) ? answer.options.slice(0, 100) : [];
    const groups = Array.isArray(answer.option_groups) ? (answer.option_groups as { label?: unknown; options?: unknown }[]).slice(0, 100).map((g) => ({ label: g.label, options: Array.isArray(g.options) ? g.options.slice(0, 100) : [] })) : [];
    this.suggested.set(`${stored.id} ${String(input.actionId)}`, [...options, ...groups.flatMap((g) => g.options)] as Record<string, unknown>[]);
    return { ok: res.status === 200, options, option_groups: groups };
  }

  /** The person opened the app's Home or Messages tab: an `app_home_opened` event, as the Events API sends it. */
  private async homeOpened(input: { user?: unknown; tab?: unknown }): Promise<unknown> {
    const who = this.person(input.user);
    const tab = input.tab === "messages" ? "messages" : "home";
    const home = this.opts.slack.home(who.id);
    const body = JSON.stringify({
      token: "deprecated-verification-token",
      team_id: "T0001",
      api_app_id: "A0001",
      event: { type: "app_home_opened", user: who.id, channel: this.opts.slack.dmChannel(who.id), tab, ...(home && tab === "home" ? { view: home.view } : {}), event_ts: this.ts() },
      type: "event_callback",
      event_id: `Ev${randomUUID().replace(/-/g, "").slice(0, 10).toUpperCase()}`,
      event_time: Math.floor(Date.now() / 1000),
      authorizations: [{ enterprise_id: null, team_id: "T0001", user_id: "UBOT", is_bot: true, is_enterprise_install: false }],
      is_ext_shared_channel: false,
    });
    const res = await this.send(body);
    return { ok: res.status === 200 };
  }

  /** One signed post to the gateway, recorded in `sent`; a failure to connect is status 0. */
  private async send(body: string): Promise<{ status: number; json: unknown; error?: string }> {
    const record: { body: string; status: number | undefined } = { body, status: undefined };
    this.sent.push(record);
    try {
      const res = await postSigned(this.opts.gatewayUrl, body, { secret: this.opts.secret });
      record.status = res.status;
      return { status: res.status, json: res.json };
    } catch (err) {
      return { status: 0, json: undefined, error: (err as Error).message };
    }
  }

  /** Posts to the gateway, shows the ack (for a slash command), then what came in meanwhile. */
  private async post(body: string, origin: Origin, what: string): Promise<void> {
    const at = { channel: origin.channel, dm: origin.dm };
    try {
      const res = await this.send(body);
      if (res.status === 0) {
        this.slackbot(at, origin.user, `${what} failed with the error "dispatch_failed" (${res.error ?? "no answer"})`);
      } else if (res.status !== 200) {
        // Slack tells the person that much and no more.
        this.slackbot(at, origin.user, `${what} failed with the error "http_service_error" (HTTP ${res.status})`);
      } else if (origin.held && res.json && typeof res.json === "object" && (typeof (res.json as { text?: unknown }).text === "string" || Array.isArray((res.json as { blocks?: unknown }).blocks))) {
        const ack = res.json as Record<string, unknown>;
        const shown = this.add(this.fromApp("ack", ack, { channel: origin.channel, user: origin.user, ephemeral: ack.response_type !== "in_channel" }));
        origin.messageId = shown.id;
      }
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
    const routes: Record<string, (input: Record<string, unknown>) => Promise<unknown>> = {
      "/command": (i) => this.command(i),
      "/action": (i) => this.action(i),
      "/view": (i) => this.submitView(i),
      "/suggest": (i) => this.suggest(i),
      "/home": (i) => this.homeOpened(i),
    };
    const route = routes[path];
    if (req.method === "POST" && route) {
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
      const out = await route(input);
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

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s) as unknown;
  } catch {
    return undefined;
  }
}

/** A static select's options, its groups' too. */
function optionsOf(e: Record<string, unknown>): unknown[] {
  const groups = Array.isArray(e.option_groups) ? (e.option_groups as { options?: unknown }[]) : [];
  return [...(Array.isArray(e.options) ? e.options : []), ...groups.flatMap((g) => (Array.isArray(g.options) ? g.options : []))];
}
