import { z } from "zod";
import { PowerStateWords, ProxyEndpoints, SlackChannelIdSchema, SlackTeamIdSchema, SlackUserIdSchema, VM_LIST_MAX_VMS, formatDuration, type Actor, type VmSummary } from "@iaas/contracts";
import { NO_USAGE, teamLabel, type Policy } from "@iaas/policy";
import { inVcenter, quotaKey, requestJson, usageAcross, type Logger, type NatsConnection } from "@iaas/runtime";
import type { Ack, CommandPayload, GroupReader } from "../listeners/call.js";
import { actorOn } from "../listeners/call.js";
import { button, context, section, type Block } from "../presentation/blocks.js";
import { escape } from "../presentation/mrkdwn.js";
import { memory, quotaMessage, type ListedVm, type QuotaLine } from "../presentation/views.js";
import type { QuotaGate } from "../stores/quotas.js";
import type { Replier } from "../transport/reply.js";
import type { SlackApi } from "../transport/slack.js";
import type { MetadataSigner } from "./forms.js";
import { vmButtons } from "./vm-actions.js";

/** The Home tab's Previous / Next buttons. */
export const HOME_PAGE_ACTION = "iaas.home.page";
/** VMs per Home page: two blocks each, so a page stays far under Slack's 100 blocks per view. */
export const HOME_PAGE_SIZE = 20;
/** Slack's limit on blocks in a view. */
export const MAX_VIEW_BLOCKS = 100;
const HOME_TIMEOUT_MS = 5_000;
/** How long after a command's final result the Home is published again. */
export const REFRESH_DELAY_MS = 1_500;
const MAX_TEAMS = 5;

/** An approval waiting for the user to decide, as the approvals feature lists it. */
export interface HomeApproval {
  /** One line: who asks for what. */
  summary: string;
  /** Its Approve / Reject buttons, as the approvals feature makes them. */
  buttons: Block[];
}

/** What the Home of one user shows; built by `homeView` (deterministic: docs/slack/home.json). */
export interface HomeContent {
  userId: string;
  roles: readonly string[];
  /** With several vCenters, each VM names its own (`vcenter`). */
  vms: readonly ListedVm[];
  total: number;
  page: number;
  /** The buttons of each VM, by `homeKey`. */
  buttons: ReadonlyMap<string, ReturnType<typeof vmButtons>>;
  approvals: readonly HomeApproval[];
  quota: { mine: QuotaLine; teams: QuotaLine[] } | undefined;
  /** Lease countdowns are measured from here. */
  now: number;
  canList: boolean;
}

const POWER: Record<VmSummary["powerState"], string> = { poweredOn: ":large_green_circle: On", poweredOff: ":white_circle: Off", suspended: ":double_vertical_bar: Suspended" };

function leaseLeft(vm: VmSummary, now: number): string | undefined {
  if (vm.leaseInvalid !== undefined) return "lease unreadable (tell IT)";
  if (vm.leaseExpires === undefined) return undefined;
  const left = Date.parse(vm.leaseExpires) - now;
  return left > 0 ? `lease ${formatDuration(Math.max(60_000, Math.floor(left / 60_000) * 60_000))} left` : "lease ended";
}

/** A VM's key in `HomeContent.buttons`: its name, and its vCenter when it names one (names repeat across vCenters). */
export function homeKey(vm: Pick<ListedVm, "name" | "vcenter">): string {
  return vm.vcenter === undefined ? vm.name : `${vm.vcenter}/${vm.name}`;
}

/** The Home view (views.publish); `metadata` is signed by the caller. */
export function homeView(h: HomeContent, metadata: string): Record<string, unknown> {
  const blocks: Block[] = [];
  if (h.roles.length === 0) {
    blocks.push(section("*IaaS*"), section("You have no role in the IaaS policy, so there is nothing you can do here yet. Ask an IT admin to add you."));
    return { type: "home", callback_id: "iaas.home", private_metadata: metadata, blocks };
  }
  blocks.push(section(`*Your VMs* · <@${h.userId}>`), context("Your own VMs and your teams'. Type `/iaas create` for a new one, `/iaas help` for every command."));
  if (!h.canList) blocks.push(section("Your role does not let you list VMs."));
  else if (h.total === 0) blocks.push(section("You and your teams have no VMs."));
  for (const vm of h.vms) {
    const facts = [POWER[vm.powerState] ?? PowerStateWords[vm.powerState], `${vm.numCpu} vCPU`, memory(vm.memoryMB), leaseLeft(vm, h.now), vm.snapshots !== undefined ? `${vm.snapshots} snapshot${vm.snapshots === 1 ? "" : "s"}` : undefined, vm.team ? teamLabel(vm.team) : undefined].filter(Boolean);
    blocks.push(section(`*${escape(vm.name)}*${vm.vcenter !== undefined ? ` (vc=${escape(vm.vcenter)})` : ""}\n${facts.join(" · ")}`));
    const buttons = h.buttons.get(homeKey(vm)) ?? [];
    if (buttons.length) blocks.push({ type: "actions", elements: buttons });
  }
  const pages = Math.max(1, Math.ceil(h.total / HOME_PAGE_SIZE));
  if (pages > 1) {
    blocks.push(context(`Page ${h.page + 1} of ${pages} · ${h.total} VMs`));
    const nav = [...(h.page > 0 ? [button(HOME_PAGE_ACTION, "Previous", String(h.page - 1))] : []), ...(h.page + 1 < pages ? [button(HOME_PAGE_ACTION, "Next", String(h.page + 1))] : [])];
    if (nav.length) blocks.push({ type: "actions", elements: nav });
  }
  blocks.push({ type: "divider" }, section("*Approvals waiting for you*"));
  if (h.approvals.length === 0) blocks.push(context("None."));
  for (const a of h.approvals.slice(0, 5)) blocks.push(section(a.summary), ...a.buttons.slice(0, 1));
  if (h.quota) {
    blocks.push({ type: "divider" });
    blocks.push(...(quotaMessage(h.quota.mine, h.quota.teams).blocks ?? []).slice(0, 1 + MAX_TEAMS + 1));
  }
  return { type: "home", callback_id: "iaas.home", private_metadata: metadata, blocks: blocks.slice(0, MAX_VIEW_BLOCKS) };
}

/** What a Home view carries for its clicks, signed: whose Home it is, their DM with the app, the page. */
const HomeStateSchema = z.strictObject({ h: z.literal(1), u: SlackUserIdSchema, t: SlackTeamIdSchema, c: SlackChannelIdSchema, p: z.number().int().min(0).max(VM_LIST_MAX_VMS) });
type HomeState = z.infer<typeof HomeStateSchema>;

const OpenedSchema = z.object({ team_id: SlackTeamIdSchema, event: z.object({ type: z.literal("app_home_opened"), user: SlackUserIdSchema, channel: SlackChannelIdSchema, tab: z.string().optional() }) });
const ClickSchema = z.object({
  user: z.object({ id: SlackUserIdSchema }),
  team: z.object({ id: SlackTeamIdSchema }).nullish(),
  trigger_id: z.string().min(1).max(255),
  view: z.object({ private_metadata: z.string().max(3000) }),
  actions: z.array(z.object({ action_id: z.string(), value: z.string().max(2000) })).min(1),
});

export interface HomeDeps {
  api: SlackApi;
  signer: MetadataSigner;
  policy: Policy;
  groups: GroupReader;
  nc: NatsConnection;
  quotas: QuotaGate;
  replier: Replier;
  run: (p: CommandPayload, ack: (r: Ack) => Promise<void>) => Promise<void>;
  /** Approvals waiting for this user (the approvals feature); none when not given. */
  approvalsFor?: (actor: Actor) => Promise<HomeApproval[]>;
  log: Logger;
  now: () => number;
}

/**
 * The App Home tab: the user's VMs (own and team) with their buttons, approvals waiting for
 * them, and quota use. Published on `app_home_opened`, after a click, and after the user's own
 * commands finish (`refresh`, from the result relay) for users who opened it on this replica.
 */
export class Home {
  private readonly seen = new Map<string, HomeState>();
  private readonly pending = new Map<string, NodeJS.Timeout>();

  constructor(private readonly d: HomeDeps) {}

  async opened(body: unknown): Promise<void> {
    const p = OpenedSchema.safeParse(body);
    if (!p.success || (p.data.event.tab !== undefined && p.data.event.tab !== "home")) return;
    await this.publish({ h: 1, u: p.data.event.user, t: p.data.team_id, c: p.data.event.channel, p: 0 });
  }

  /** Previous / Next. */
  async page(body: unknown): Promise<void> {
    const st = this.stateOf(body);
    if (!st) return;
    const page = Number((body as { actions: { value: string }[] }).actions[0]!.value);
    if (!Number.isInteger(page) || page < 0 || page * HOME_PAGE_SIZE >= VM_LIST_MAX_VMS) return;
    await this.publish({ ...st.state, p: page });
  }

  /** A run button on the Home (no response_url): the command as the clicker, answered in their DM, then the Home again. */
  async run(body: unknown): Promise<void> {
    const st = this.stateOf(body);
    if (!st) return;
    const payload: CommandPayload = { team_id: st.state.t, user_id: st.state.u, channel_id: st.state.c, command: "/iaas", text: st.value, trigger_id: st.trigger };
    await this.d.run(payload, async (r) => {
      await this.d.replier.dm(st.state.u, r.message, r.code ?? "home");
    });
    await this.publish(st.state);
  }

  /**
   * After one of the user's commands finished: their Home again, if they opened it on this
   * replica. A moment later (REFRESH_DELAY_MS), because the proxy's live index follows vCenter's
   * change a little after the task ends; finals arriving meanwhile share one publish.
   */
  refresh(userId: string): void {
    const st = this.seen.get(userId);
    if (!st || this.pending.has(userId)) return;
    const timer = setTimeout(() => {
      this.pending.delete(userId);
      void this.publish(this.seen.get(userId) ?? st);
    }, REFRESH_DELAY_MS);
    timer.unref();
    this.pending.set(userId, timer);
  }

  /** Stops pending refreshes. */
  stop(): void {
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
  }

  private stateOf(body: unknown): { state: HomeState; value: string; trigger: string } | undefined {
    const p = ClickSchema.safeParse(body);
    if (!p.success) return undefined;
    const st = HomeStateSchema.safeParse(this.d.signer.verify(p.data.view.private_metadata));
    // Only the Home's owner clicks on it; anything else is forged.
    if (!st.success || st.data.u !== p.data.user.id || (p.data.team?.id !== undefined && p.data.team.id !== st.data.t)) {
      this.d.log.warn({ userId: p.data.user.id }, "Home click refused: its metadata does not verify");
      return undefined;
    }
    return { state: st.data, value: p.data.actions[0]!.value, trigger: p.data.trigger_id };
  }

  async publish(st: HomeState): Promise<void> {
    this.seen.set(st.u, st);
    try {
      const view = homeView(await this.content(st), this.d.signer.sign(st));
      await this.d.api.viewsPublish(st.u, view);
    } catch (err) {
      this.d.log.warn({ err, userId: st.u }, "could not publish the Home tab");
    }
  }

  private async content(st: HomeState): Promise<HomeContent> {
    const { policy } = this.d;
    const groups = this.d.groups.groupsOf(st.u);
    const actor: Actor = { userId: st.u, teamId: st.t, channelId: st.c, ...(groups?.length ? { groups: [...groups] } : {}), via: "slack" };
    const roles = policy.rolesOf(actor);
    const base = { userId: st.u, roles, page: st.p, now: this.d.now(), approvals: [] as HomeApproval[], buttons: new Map(), vms: [] as ListedVm[], total: 0, quota: undefined, canList: false };
    if (roles.length === 0) return base;
    const ask = <T>(p: Promise<T>) => p;
    const teams = [...new Set([...this.d.groups.allGroupsOf(st.u, 200), ...policy.teamsOf(actor)])].slice(0, 200);
    const canList = policy.can(actor, "list");
    const limit = Math.min((st.p + 1) * HOME_PAGE_SIZE, VM_LIST_MAX_VMS);
    const [list, quota, approvals] = await Promise.all([
      canList ? ask(this.list({ scope: { owner: st.u, teams }, limit })) : Promise.resolve({ vms: [], total: 0 }),
      policy.can(actor, "quota") ? this.quota(actor).catch(() => undefined) : Promise.resolve(undefined),
      (this.d.approvalsFor?.(actor) ?? Promise.resolve([])).catch(() => []),
    ]);
    const vms = list.vms.slice(st.p * HOME_PAGE_SIZE, (st.p + 1) * HOME_PAGE_SIZE);
    const buttons = new Map(vms.map((vm) => [homeKey(vm), vmButtons(policy, actorOn(this.d.groups, actor, vm.team), vm, vm.vcenter)] as const));
    return { ...base, canList, vms, total: list.total ?? list.vms.length, buttons, quota, approvals };
  }

  /**
   * The first `limit` of the user's VMs: from the default vCenter, or with several from each of
   * them, merged by name (each VM then names its vCenter, and its buttons carry `vc=`). A vCenter
   * that cannot be read is left out; if none can, the list fails.
   */
  private async list(req: { scope: { owner: string; teams: string[] }; limit: number }): Promise<{ vms: ListedVm[]; total?: number | undefined }> {
    const ids = this.d.quotas.vcenters ?? ["default"];
    if (ids.length <= 1) return requestJson(this.d.nc, ProxyEndpoints.vmList, req, { timeoutMs: HOME_TIMEOUT_MS });
    const answers = await Promise.allSettled(ids.map((id) => requestJson(this.d.nc, ProxyEndpoints.vmList, { ...req, ...inVcenter(id === "default" ? undefined : id) }, { timeoutMs: HOME_TIMEOUT_MS })));
    const vms: ListedVm[] = [];
    let total = 0;
    answers.forEach((a, i) => {
      if (a.status === "rejected") return this.d.log.warn({ err: a.reason, vcenter: ids[i] }, "Home: could not list a vCenter's VMs");
      vms.push(...a.value.vms.map((v) => ({ ...v, vcenter: ids[i]! })));
      total += a.value.total ?? a.value.vms.length;
    });
    if (answers.every((a) => a.status === "rejected")) throw (answers[0] as PromiseRejectedResult).reason;
    vms.sort((a, b) => a.name.localeCompare(b.name) || ids.indexOf(a.vcenter!) - ids.indexOf(b.vcenter!));
    return { vms: vms.slice(0, req.limit), total };
  }

  private async quota(actor: Actor): Promise<{ mine: QuotaLine; teams: QuotaLine[] }> {
    const { policy } = this.d;
    const opts = { timeoutMs: HOME_TIMEOUT_MS };
    const teams = policy.teamsOf(actor).slice(0, MAX_TEAMS);
    const [{ owner }, held] = await Promise.all([usageAcross(this.d.nc, this.d.quotas.vcenters, { owner: actor.userId }, opts), this.d.quotas.held(quotaKey.user(actor.userId))]);
    const mine: QuotaLine = { kind: "user", id: actor.userId, used: owner ?? NO_USAGE, held, limits: policy.quotaOf("user", actor.userId) };
    const lines = await Promise.all(
      teams.map(async (team): Promise<QuotaLine> => {
        const [u, h] = await Promise.all([usageAcross(this.d.nc, this.d.quotas.vcenters, { team }, opts), this.d.quotas.held(quotaKey.team(team))]);
        return { kind: "team", id: team, used: u.team ?? NO_USAGE, held: h, limits: policy.quotaOf("team", team) };
      }),
    );
    return { mine, teams: lines };
  }
}

