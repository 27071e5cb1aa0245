import { createHmac, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { ProxyEndpoints, SlackChannelIdSchema, SlackTeamIdSchema, SlackUserIdSchema, parseDuration, formatDuration, type Actor } from "@iaas/contracts";
import type { Policy } from "@iaas/policy";
import { requestJson, type Logger, type NatsConnection } from "@iaas/runtime";
import { tokenize } from "../commands/parse.js";
import type { Ack, CommandPayload, GroupReader } from "../listeners/call.js";
import { ephemeral, errorText } from "../presentation/render.js";
import type { SlackApi } from "../transport/slack.js";
import type { Replier, SlackMessage } from "../transport/reply.js";
import { RESPONSE_URL_TTL_MS } from "../stores/requests.js";

/** The modals' callback ids: one per verb a form makes. */
export const FORM_CALLBACKS = { create: "iaas.form.create", deploy: "iaas.form.deploy" } as const;
/** The external select of the deploy form's template. */
export const TEMPLATE_OPTIONS_ACTION = "iaas.form.template";
export type FormKind = keyof typeof FORM_CALLBACKS;

/** A modal older than this is refused (its state is too old to trust; the user opens a new one). */
export const FORM_MAX_AGE_MS = 60 * 60 * 1000;
/** An external select's query longer than this gets no options: a template name is never that long. */
export const MAX_OPTIONS_QUERY = 100;
/** Slack waits 3 s for options; the proxy gets this long. */
export const OPTIONS_TIMEOUT_MS = 2_000;
/** Slack shows at most 100 options. */
const MAX_OPTIONS = 100;

/**
 * What a form carries for its submission, signed (HMAC-SHA256 with a key derived from the app's
 * secret): who opened it, from where, and where its answers go. A submission whose metadata does
 * not verify, or was opened by someone else, runs nothing.
 */
const FormStateSchema = z.strictObject({
  k: z.enum(["create", "deploy"]),
  u: SlackUserIdSchema,
  t: SlackTeamIdSchema,
  c: SlackChannelIdSchema,
  r: z.string().max(1000).optional(),
  at: z.number().int().nonnegative(),
});
export type FormState = z.infer<typeof FormStateSchema>;

/** Signs and verifies view private_metadata. */
export class MetadataSigner {
  private readonly key: Buffer;
  constructor(secret: string) {
    this.key = createHmac("sha256", secret).update("iaas view private_metadata v1").digest();
  }
  sign(value: unknown): string {
    const body = Buffer.from(JSON.stringify(value)).toString("base64url");
    return `${body}.${this.mac(body)}`;
  }
  verify(metadata: string): unknown {
    const dot = metadata.lastIndexOf(".");
    if (dot < 1) return undefined;
    const body = metadata.slice(0, dot);
    const mac = Buffer.from(metadata.slice(dot + 1));
    const want = Buffer.from(this.mac(body));
    if (mac.length !== want.length || !timingSafeEqual(mac, want)) return undefined;
    try {
      return JSON.parse(Buffer.from(body, "base64url").toString("utf8"));
    } catch {
      return undefined;
    }
  }
  private mac(body: string): string {
    return createHmac("sha256", this.key).update(body).digest("base64url");
  }
}

type Option = { text: { type: "plain_text"; text: string }; value: string };
const plain = (text: string, max = 75) => ({ type: "plain_text" as const, text: text.length > max ? `${text.slice(0, max - 1)}…` : text });
const option = (text: string, value: string): Option => ({ text: plain(text), value });

/** The teams a form offers: the actor's, by id, labelled as Slack shows them. */
export function teamOptions(policy: Policy, actor: Actor): Option[] {
  return [...new Set(policy.teamsOf(actor))].slice(0, MAX_OPTIONS).map((t) => option(/^S/.test(t) ? `user group ${t}` : t, t));
}

/** A duration as the lease field takes it (`30d`, `12h`): the largest unit that divides it. */
export function durationText(ms: number): string {
  for (const [unit, n] of [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000]] as const) if (ms % n === 0) return `${ms / n}${unit}`;
  return `${Math.ceil(ms / 1000)}s`;
}

/** The sizes a form offers, with what each means, marking those that need an approval. */
export function sizeOptions(policy: Policy): Option[] {
  return policy
    .sizes()
    .slice(0, MAX_OPTIONS)
    .map((s) => option(`${s.name}: ${s.cpu} vCPU · ${s.memoryGB} GB · ${s.diskGB} GB disk${s.approval ? " (needs approval)" : ""}`, s.name));
}

/**
 * The create / deploy modal, as views.open sends it. Deterministic for the same policy, actor
 * and metadata (docs/slack/*.json are generated from it).
 */
export function vmFormView(kind: FormKind, policy: Policy, actor: Actor, metadata: string): Record<string, unknown> {
  const sizes = sizeOptions(policy);
  const teams = teamOptions(policy, actor);
  const def = sizes.find((o) => o.value === policy.defaultSize.name);
  const blocks: Record<string, unknown>[] = [
    {
      type: "input",
      block_id: "name",
      label: plain("Name"),
      element: { type: "plain_text_input", action_id: "value", max_length: policy.document.naming.maxLength, placeholder: plain("web-01") },
      hint: plain(`Use ${policy.document.naming.description}.`, 150),
    },
  ];
  if (kind === "deploy") {
    blocks.push({
      type: "input",
      block_id: "template",
      label: plain("Template"),
      element: { type: "external_select", action_id: TEMPLATE_OPTIONS_ACTION, min_query_length: 0, placeholder: plain("Pick a template") },
    });
  }
  blocks.push({
    type: "input",
    block_id: "size",
    label: plain("Size"),
    element: { type: "static_select", action_id: "value", options: sizes, ...(def ? { initial_option: def } : {}) },
  });
  if (teams.length > 0) {
    blocks.push({ type: "input", block_id: "team", optional: true, label: plain("Team"), element: { type: "static_select", action_id: "value", options: teams, placeholder: plain("Only you") } });
  }
  if (policy.leases.enabled) {
    blocks.push({
      type: "input",
      block_id: "lease",
      optional: true,
      label: plain("Lease"),
      element: { type: "plain_text_input", action_id: "value", max_length: 10, initial_value: durationText(policy.leases.default) },
      hint: plain(`How long the VM is kept, e.g. 7d or 12h; longer than ${formatDuration(policy.leases.max)} needs an approval.`, 150),
    });
  }
  return {
    type: "modal",
    callback_id: FORM_CALLBACKS[kind],
    title: plain(kind === "create" ? "Create a VM" : "Deploy a template", 24),
    submit: plain(kind === "create" ? "Create" : "Deploy", 24),
    close: plain("Cancel", 24),
    private_metadata: metadata,
    blocks,
  };
}

/** A modal that replaces the form, saying why nothing was done. */
function noticeView(text: string): Record<string, unknown> {
  return { type: "modal", title: plain("IaaS", 24), close: plain("Close", 24), blocks: [{ type: "section", text: { type: "mrkdwn", text: text.slice(0, 3000) } }] };
}

/** The field a refusal is about, by its code and words; undefined: not one field's (it goes to the channel or DM). */
function fieldOf(r: Ack, kind: FormKind): string | undefined {
  const text = r.refusal ?? "";
  switch (r.code) {
    case "IAAS_NAME_NOT_ALLOWED":
    case "IAAS_DUPLICATE_NAME":
      return "name";
    case "IAAS_UNKNOWN_SIZE":
    case "IAAS_QUOTA_EXCEEDED":
      return "size";
    case "IAAS_TEMPLATE_NOT_FOUND":
    case "IAAS_VM_NOT_FOUND":
      return kind === "deploy" ? "template" : undefined;
    default:
      if (/team/i.test(text) && r.code !== "IAAS_RATE_LIMITED") return "team";
      if (/lease/i.test(text)) return "lease";
      if (r.code === "IAAS_SYNTAX" || r.code === "IAAS_INVALID_ARGUMENT") return "name";
      return undefined;
  }
}

/** A field error as Slack shows it: plain text, short. */
const fieldText = (s: string) => s.replace(/`/g, "").slice(0, 300);

const SubmissionSchema = z.object({
  type: z.literal("view_submission"),
  user: z.object({ id: SlackUserIdSchema }),
  team: z.object({ id: SlackTeamIdSchema }).nullish(),
  trigger_id: z.string().min(1).max(255).optional(),
  view: z.object({
    id: z.string().min(1).max(255),
    callback_id: z.string().max(255),
    private_metadata: z.string().max(3000).default(""),
    state: z.object({ values: z.record(z.string(), z.record(z.string(), z.unknown())) }).default({ values: {} }),
  }),
});

const SuggestionSchema = z.object({
  user: z.object({ id: SlackUserIdSchema }),
  action_id: z.literal(TEMPLATE_OPTIONS_ACTION),
  value: z.string().default(""),
  view: z.object({ private_metadata: z.string().max(3000).default("") }).optional(),
});

export interface FormsDeps {
  api: SlackApi;
  signer: MetadataSigner;
  policy: Policy;
  groups: GroupReader;
  nc: NatsConnection;
  replier: Replier;
  allowed: (url: string) => boolean;
  /** SlashCommands.run: the slash path, for the command a form builds. */
  run: (p: CommandPayload, ack: (r: Ack) => Promise<void>, meta: { responsePosts?: number; responseUrlSince?: number }) => Promise<void>;
  log: Logger;
  now?: () => number;
}

/**
 * `/iaas create` and `/iaas deploy` without arguments: a modal. Its submission is turned into the
 * command text the user could have typed and run through the slash path (grammar, role, scope,
 * the verb's checks, quota, publish), so a form can do nothing the command would refuse.
 */
export class Forms {
  constructor(private readonly d: FormsDeps) {}

  private actor(userId: string, teamId: string, channelId?: string): Actor {
    const groups = this.d.groups.groupsOf(userId);
    return { userId, teamId, ...(channelId ? { channelId } : {}), ...(groups?.length ? { groups: [...groups] } : {}), via: "slack" };
  }

  /** The form a slash command's text asks for, if any (`create` or `deploy` alone). */
  static kindOf(text: string): FormKind | undefined {
    const t = text.trim().toLowerCase();
    return t === "create" || t === "deploy" ? t : undefined;
  }

  /**
   * Opens the form with the command's trigger_id (valid 3 s) and answers the ack: nothing when it
   * opened, else why not. The role is checked first: a user who may not create gets the refusal, not a form.
   */
  async open(kind: FormKind, p: { team_id: string; user_id: string; channel_id: string; response_url: string; trigger_id: string }): Promise<SlackMessage | undefined> {
    const actor = this.actor(p.user_id, p.team_id, p.channel_id);
    try {
      this.d.policy.authorize(actor, kind);
    } catch (err) {
      return ephemeral(errorText(err as { code: string; message: string }));
    }
    const state: FormState = { k: kind, u: p.user_id, t: p.team_id, c: p.channel_id, ...(this.d.allowed(p.response_url) ? { r: p.response_url } : {}), at: this.now() };
    try {
      await this.d.api.viewsOpen(p.trigger_id, vmFormView(kind, this.d.policy, actor, this.d.signer.sign(state)));
      return undefined;
    } catch (err) {
      this.d.log.warn({ reason: (err as { data?: { error?: string } }).data?.error ?? (err as Error).message }, "views.open failed");
      return ephemeral(`:x: The form could not be opened. Type the command instead: \`/iaas ${kind === "create" ? "create <name> [size]" : "deploy <template> <name> [size]"}\`.`);
    }
  }

  private now(): number {
    return (this.d.now ?? Date.now)();
  }

  /** A form submitted: checked, run as its command, answered with field errors or closed. */
  async submit(body: unknown, ack: (answer?: Record<string, unknown>) => Promise<void>): Promise<void> {
    const parsed = SubmissionSchema.safeParse(body);
    if (!parsed.success) {
      // view_closed and anything else: nothing to run.
      await ack();
      return;
    }
    const s = parsed.data;
    const refuse = (why: string) => ack({ response_action: "update", view: noticeView(`:x: ${why} Nothing was done.`) });
    const kind = (Object.keys(FORM_CALLBACKS) as FormKind[]).find((k) => FORM_CALLBACKS[k] === s.view.callback_id);
    if (!kind) return refuse("This form is not one the IaaS app opened.");
    const state = FormStateSchema.safeParse(this.d.signer.verify(s.view.private_metadata));
    if (!state.success || state.data.k !== kind || state.data.u !== s.user.id || (s.team?.id !== undefined && s.team.id !== state.data.t)) {
      this.d.log.warn({ userId: s.user.id }, "form submission refused: its metadata does not verify");
      return refuse("This form's data was changed outside Slack, or it was opened by someone else.");
    }
    const st = state.data;
    if (this.now() - st.at > FORM_MAX_AGE_MS) return refuse(`This form is more than an hour old. Run \`/iaas ${kind}\` again.`);
    const actor = this.actor(st.u, st.t, st.c);
    const values = s.view.state.values;
    const text = (block: string) => {
      const v = (values[block]?.value as { value?: unknown } | undefined)?.value;
      return typeof v === "string" ? v.trim() : "";
    };
    const selected = (block: string, action = "value") => {
      const v = (values[block]?.[action] as { selected_option?: { value?: unknown } | null } | undefined)?.selected_option?.value;
      return typeof v === "string" ? v : undefined;
    };
    const errors: Record<string, string> = {};
    const name = text("name");
    if (name === "") errors.name = "Give the VM a name.";
    else if (tokenize(name).length !== 1 || tokenize(name)[0] !== name || name.includes("=")) errors.name = "A VM name is one word: no spaces, no `=`.";
    else {
      try {
        this.d.policy.checkName(name);
      } catch (err) {
        errors.name = fieldText((err as Error).message);
      }
    }
    const size = selected("size");
    if (size === undefined || !this.d.policy.sizes().some((z) => z.name === size)) errors.size = "Pick one of the sizes offered.";
    const team = selected("team");
    if (team !== undefined && !this.d.policy.teamsOf(actor).includes(team)) errors.team = "Pick one of your teams.";
    let template: string | undefined;
    if (kind === "deploy") {
      template = selected("template", TEMPLATE_OPTIONS_ACTION);
      if (template === undefined || template.length > 150 || tokenize(template).length !== 1 || tokenize(template)[0] !== template) errors.template = "Pick one of the templates offered.";
      else if ((await this.templates(template)) === false) errors.template = `There is no template ${template}: pick one of those offered.`;
    }
    const leaseText = text("lease");
    let lease: string | undefined;
    if (leaseText !== "" && this.d.policy.leases.enabled && leaseText !== durationText(this.d.policy.leases.default)) {
      const ms = parseDuration(leaseText);
      if (typeof ms === "string") errors.lease = fieldText(ms);
      else lease = leaseText;
    }
    if (Object.keys(errors).length > 0) return ack({ response_action: "errors", errors });

    const words = [kind, ...(template ? [template] : []), name, size!, ...(team ? [`team=${/^S/.test(team) ? `<!subteam^${team}>` : team}`] : []), ...(lease ? [`lease=${lease}`] : [])];
    // The response_url of the slash command that opened the form, while Slack still takes posts on it.
    const url = st.r !== undefined && this.now() - st.at < RESPONSE_URL_TTL_MS ? st.r : undefined;
    const payload: CommandPayload = { team_id: st.t, user_id: st.u, channel_id: st.c, command: "/iaas", text: words.join(" "), trigger_id: s.trigger_id ?? s.view.id, ...(url ? { response_url: url } : {}) };
    await this.d.run(
      payload,
      async (r) => {
        const field = r.outcome === "rejected" ? fieldOf(r, kind) : undefined;
        if (field && (values[field] !== undefined || field === "name")) {
          await ack({ response_action: "errors", errors: { [field]: fieldText(r.refusal ?? r.message.text) } });
          return;
        }
        await ack();
        // As for a slash command: an ephemeral message where the form was opened, or a DM.
        await this.d.replier.later(payload, { ...r.message, response_type: "ephemeral", replace_original: false }, r.code ?? "form");
      },
      { responsePosts: url ? 1 : 0, responseUrlSince: st.at },
    );
  }

  /** Whether a template of that name exists (true/false), or undefined when the proxy could not say in time. */
  private async templates(name: string): Promise<boolean | undefined> {
    try {
      const { templates } = await requestJson(this.d.nc, ProxyEndpoints.templateList, {}, { timeoutMs: OPTIONS_TIMEOUT_MS });
      return templates.some((t) => t.name === name);
    } catch {
      return undefined;
    }
  }

  /** The template picker's options: the proxy's templates matching the query, within Slack's 3 s. */
  async options(body: unknown, ack: (answer: Record<string, unknown>) => Promise<void>): Promise<void> {
    const parsed = SuggestionSchema.safeParse(body);
    if (!parsed.success || parsed.data.value.length > MAX_OPTIONS_QUERY) {
      await ack({ options: [] });
      return;
    }
    const state = FormStateSchema.safeParse(this.d.signer.verify(parsed.data.view?.private_metadata ?? ""));
    if (!state.success || state.data.u !== parsed.data.user.id) {
      await ack({ options: [] });
      return;
    }
    const q = parsed.data.value.toLowerCase();
    try {
      const { templates } = await requestJson(this.d.nc, ProxyEndpoints.templateList, {}, { timeoutMs: OPTIONS_TIMEOUT_MS });
      const options = templates
        .filter((t) => t.name.length <= 150 && tokenize(t.name).length === 1 && tokenize(t.name)[0] === t.name && t.name.toLowerCase().includes(q))
        .slice(0, MAX_OPTIONS)
        .map((t) => option(`${t.name} (${t.numCpu} vCPU${t.guestOs ? `, ${t.guestOs}` : ""})`, t.name));
      await ack({ options });
    } catch (err) {
      this.d.log.warn({ err }, "template options could not be read");
      await ack({ options: [] });
    }
  }
}

