import { z } from "zod";
import { SlackChannelIdSchema, SlackTeamIdSchema, SlackUserIdSchema, formatIssues } from "@iaas/contracts";
import type { Logger } from "@iaas/runtime";
import type { SlackMessage } from "../transport/reply.js";
import { postToResponseUrl } from "../transport/reply.js";
import { MAX_COMMAND_LENGTH } from "../commands/parse.js";
import { button, type Button } from "../presentation/blocks.js";

/** A click, already verified and acked: the payload as Slack sent it. */
export type ActionHandler = (body: unknown) => Promise<void>;
/** A modal submitted or closed; `ack` closes it or shows field errors (within Slack's 3 s). */
export type ViewHandler = (body: unknown, ack: (answer?: Record<string, unknown>) => Promise<void>) => Promise<void>;
/** An external select's options, answered in `ack`. */
export type OptionsHandler = (body: unknown, ack: (answer: Record<string, unknown>) => Promise<void>) => Promise<void>;
/** An Events API event (`app_home_opened`), already acked. */
export type EventHandler = (body: unknown) => Promise<void>;

const ActionIdsSchema = z.object({ actions: z.array(z.object({ action_id: z.string().max(255) })).min(1) });
const CallbackSchema = z.object({ view: z.object({ callback_id: z.string().max(255) }) });
const OptionsIdSchema = z.object({ action_id: z.string().max(255) });
const EventTypeSchema = z.object({ event: z.object({ type: z.string().max(100) }) });

/**
 * Where a verified interaction goes: each feature (confirmations, approvals, leases, modals, the
 * App Home) registers the action ids, view callback ids, option action ids and event types it
 * owns, by exact id or by a prefix ending in `.` (`approval.` takes `approval.approve`). An
 * interaction nobody registered is logged and dropped: Slack has been acked already, and nothing
 * runs that no feature asked for.
 */
export class Interactions {
  private readonly actions = new Map<string, ActionHandler>();
  private readonly views = new Map<string, ViewHandler>();
  private readonly options = new Map<string, OptionsHandler>();
  private readonly events = new Map<string, EventHandler>();

  constructor(private readonly log: Logger) {}

  onAction(ids: string | readonly string[], h: ActionHandler): this {
    for (const id of [ids].flat()) add(this.actions, id, h);
    return this;
  }
  onView(ids: string | readonly string[], h: ViewHandler): this {
    for (const id of [ids].flat()) add(this.views, id, h);
    return this;
  }
  onOptions(ids: string | readonly string[], h: OptionsHandler): this {
    for (const id of [ids].flat()) add(this.options, id, h);
    return this;
  }
  onEvent(type: string, h: EventHandler): this {
    add(this.events, type, h);
    return this;
  }

  /** A `block_actions` payload, by its first action's id. */
  async action(body: unknown): Promise<void> {
    const id = ActionIdsSchema.safeParse(body);
    const h = id.success ? find(this.actions, id.data.actions[0]!.action_id) : undefined;
    if (!h) return this.dropped("click", id.success ? id.data.actions[0]!.action_id : undefined);
    await h(body).catch((err: unknown) => this.log.error({ err }, "handling a click failed"));
  }

  /** A `view_submission` / `view_closed` payload, by the view's callback_id; an unknown one closes the modal. */
  async view(body: unknown, ack: (answer?: Record<string, unknown>) => Promise<void>): Promise<void> {
    const id = CallbackSchema.safeParse(body);
    const h = id.success ? find(this.views, id.data.view.callback_id) : undefined;
    if (!h) {
      // A submitted form no feature issued: say so in the modal rather than close it silently.
      const submitted = (body as { type?: unknown } | null)?.type === "view_submission";
      await ack(submitted ? { response_action: "update", view: UNKNOWN_FORM_VIEW } : undefined);
      return this.dropped("view", id.success ? id.data.view.callback_id : undefined);
    }
    await h(body, ack).catch(async (err: unknown) => {
      this.log.error({ err }, "handling a view failed");
    });
  }

  /** A `block_suggestion` payload, by its action_id; an unknown one gets no options. */
  async suggest(body: unknown, ack: (answer: Record<string, unknown>) => Promise<void>): Promise<void> {
    const id = OptionsIdSchema.safeParse(body);
    const h = id.success ? find(this.options, id.data.action_id) : undefined;
    if (!h) {
      await ack({ options: [] });
      return this.dropped("options", id.success ? id.data.action_id : undefined);
    }
    await h(body, ack).catch((err: unknown) => this.log.error({ err }, "answering an options request failed"));
  }

  /** An Events API envelope, by `event.type`. */
  async event(body: unknown): Promise<void> {
    const t = EventTypeSchema.safeParse(body);
    const h = t.success ? this.events.get(t.data.event.type) : undefined;
    if (!h) return this.dropped("event", t.success ? t.data.event.type : undefined);
    await h(body).catch((err: unknown) => this.log.error({ err }, "handling an event failed"));
  }

  private dropped(kind: string, id: string | undefined): void {
    this.log.info({ kind, id: id?.slice(0, 100) }, "interaction no feature takes; ignored");
  }
}

const UNKNOWN_FORM_VIEW = {
  type: "modal",
  title: { type: "plain_text", text: "IaaS" },
  close: { type: "plain_text", text: "Close" },
  blocks: [{ type: "section", text: { type: "mrkdwn", text: ":x: This form is not one the IaaS app opened. Nothing was done." } }],
};

function add<H>(map: Map<string, H>, id: string, h: H): void {
  if (map.has(id)) throw new Error(`interaction id ${id} registered twice`);
  map.set(id, h);
}

function find<H>(map: Map<string, H>, id: string): H | undefined {
  const exact = map.get(id);
  if (exact) return exact;
  for (const [k, h] of map) if (k.endsWith(".") && id.startsWith(k)) return h;
  return undefined;
}

// ---- buttons that run a command ---------------------------------------------------------------

/** The action id of a button that runs an `/iaas` command, as the person who clicks it. */
export const RUN_ACTION = "iaas.run";

/**
 * A button that runs `/iaas <text>` as whoever clicks it (Extend in a lease reminder, Power off on
 * an `info` answer): the click goes through the slash-command path, with the same grammar,
 * policy, scope, confirmation and quota checks as if the clicker had typed it. The button carries
 * only the command text; identity comes from the verified click.
 */
export function runButton(label: string, text: string, style?: "primary" | "danger"): Button {
  return button(RUN_ACTION, label, text.slice(0, MAX_COMMAND_LENGTH), style);
}

const RunClickSchema = z.object({
  type: z.literal("block_actions"),
  user: z.object({ id: SlackUserIdSchema }),
  team: z.object({ id: SlackTeamIdSchema }).nullish(),
  trigger_id: z.string().min(1).max(255),
  response_url: z.string().min(1).optional(),
  channel: z.object({ id: SlackChannelIdSchema }).nullish(),
  container: z.object({ channel_id: SlackChannelIdSchema.optional() }).passthrough().nullish(),
  actions: z.array(z.object({ action_id: z.literal(RUN_ACTION), value: z.string().max(MAX_COMMAND_LENGTH) })).min(1),
});

/** Runs one slash command: the gateway's `SlashCommands.handle`. */
export type RunSlash = (body: unknown, ack: (m: SlackMessage) => Promise<void>) => Promise<void>;

/**
 * A click on a `runButton` in a message: handled as the slash command `/iaas <value>` from the
 * clicker, in the message's channel, answered on the click's response_url (a new message, the
 * clicked one stays). A click without a response_url (the App Home) is not handled here.
 */
export async function handleRunClick(d: { slash: RunSlash; allowed: (url: string) => boolean; log: Logger; home?: (body: unknown) => Promise<void> }, body: unknown): Promise<void> {
  // A click on the App Home has no response_url: the Home runs it and answers in the user's DM.
  const container = (body as { container?: { type?: unknown }; response_url?: unknown } | null) ?? {};
  if (d.home && container.container?.type === "view" && container.response_url === undefined) return d.home(body);
  const parsed = RunClickSchema.safeParse(body);
  if (!parsed.success) {
    d.log.warn(`run click rejected: ${formatIssues(parsed.error)}`);
    return;
  }
  const p = parsed.data;
  const channel = p.channel?.id ?? p.container?.channel_id;
  if (!p.response_url || !d.allowed(p.response_url) || !p.team?.id || !channel) {
    d.log.warn("run click ignored: no response_url on Slack's host, team or channel");
    return;
  }
  const responseUrl = p.response_url;
  const payload = { team_id: p.team.id, user_id: p.user.id, channel_id: channel, command: "/iaas", text: p.actions[0]!.value, response_url: responseUrl, trigger_id: p.trigger_id };
  await d.slash(payload, async (m) => {
    const out = await postToResponseUrl(responseUrl, { ...m, replace_original: false });
    if (!out.ok) d.log.warn({ detail: out.detail }, "response_url post failed");
  });
}
