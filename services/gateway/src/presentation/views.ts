import { PowerStateWords, ToolsStatusWords, formatDuration, formatMemory, type Actor, type PowerState, type TemplateInfo, type VmInfo, type VmSummary } from "@iaas/contracts";
import { AUDIT_SHOW, type AuditRow } from "../stores/audit.js";
import { describeSize, teamLabel, type Policy, type Scope } from "@iaas/policy";
import { context, fields, section, sectionWithFields, MAX_BLOCKS, type Block, type Button } from "./blocks.js";
import { code, escape } from "./mrkdwn.js";
import { summaryOf, takesVcenter, usageOf, type ParseResult, type Verb } from "../commands/parse.js";
import type { SlackMessage } from "../transport/reply.js";
import { QUOTA_FIELDS, type QuotaLimits } from "@iaas/policy";
import type { RemediationPause, SnapshotInfo, Usage } from "@iaas/contracts";

/**
 * The answers to queries (help, list, info, templates, sizes, quota, echo, audit), as Block Kit with
 * fields, plus a fallback text. Every value that came from a user or from vCenter is escaped, in the
 * fallback too: Slack reads it as mrkdwn as well (notifications, clients without blocks).
 * All replies are ephemeral (see render.ts).
 */
const SLASH = "/iaas";

export const LIST_CAP = 20;

function message(text: string, blocks: Block[]): SlackMessage {
  return { response_type: "ephemeral", text, blocks: blocks.slice(0, MAX_BLOCKS) };
}

const POWER: Record<PowerState, string> = { poweredOn: ":large_green_circle: on", poweredOff: ":white_circle: off", suspended: ":double_vertical_bar: suspended" };
/** The one memory wording (contracts), under the name the slash listener imports. */
export const memory = formatMemory;

const gb = (n: number) => (n < 1 ? `${Math.round(n * 1024)} MB` : `${Math.round(n * 100) / 100} GB`);

/** How far a grant reaches, as `help` says it. `owner` in its own scope reaches only the VMs the caller owns. */
function scopeWords(verb: Verb, scope: Scope | undefined): string {
  if (scope === undefined) return "";
  if (scope === "any") return verb === "list" ? " _(any VM, with `all`)_" : " _(any VM)_";
  return verb === "owner" ? " _(VMs you own)_" : " _(your and your team's VMs)_";
}

export function helpMessage(verbs: readonly Verb[], topic?: Verb, scopeOf: (verb: Verb) => Scope | undefined = () => undefined, vcenters: readonly string[] = ["default"]): SlackMessage {
  // With one vCenter `vc=` has nothing to choose, and is not mentioned.
  const vcNote = vcenters.length > 1 ? `Add ${code("vc=<name>")} to a command about VMs to act in that vCenter (${vcenters.map((v) => code(v)).join(", ")}); without it, ${code("default")}. ${code(`${SLASH} list`)} without it lists every vCenter.` : undefined;
  if (topic) {
    const usage = usageOf(topic).map((u) => `Usage: ${code(`${SLASH} ${u}`)}`).join("\n");
    const head = `*${SLASH} ${topic}*: ${summaryOf(topic)}${scopeWords(topic, scopeOf(topic))}`;
    const vc = vcNote && takesVcenter(topic) ? [vcNote] : [];
    return message([head, usage, ...vc].join("\n"), [section(head), section(usage), ...vc.map((n) => context(n))]);
  }
  if (verbs.length === 0) return message("There are no commands you may run; ask an IT admin.", [section("There are no commands you may run; ask an IT admin.")]);
  const lines = verbs.flatMap((v) => usageOf(v).map((u) => `• ${code(`${SLASH} ${u}`)}: ${summaryOf(v)}${scopeWords(v, scopeOf(v))}`));
  const note = `${code("<vm>")} is an exact VM name or an inventory path starting with ${code("/")}; wildcards are not accepted.${vcNote ? ` ${vcNote}` : ""}`;
  return message([`*${SLASH} commands you can run*`, ...lines, note].join("\n"), [
    section(`*${SLASH} commands you can run*`),
    ...fields(verbs.map((v) => [usageOf(v).map((u) => code(`${SLASH} ${u}`)).join("\n"), `${summaryOf(v)}${scopeWords(v, scopeOf(v))}`] as const)),
    context(note),
  ]);
}

/** A VM of a `list`, with the vCenter it is in when several are configured. */
export type ListedVm = VmSummary & { vcenter?: string };

/**
 * `list`: the caller's own and team VMs (`own`), or every VM (`all`); the first LIST_CAP of `vms`
 * are shown, and `total` (how many match, default `vms.length`) is what the counts say.
 */
export function listMessage(vms: readonly ListedVm[], glob: string | undefined, scope: "own" | "all" = "all", total = vms.length, unread: readonly string[] = []): SlackMessage {
  const shown = vms.slice(0, LIST_CAP);
  const count = Math.max(total, shown.length);
  const more = count - shown.length;
  // Own VMs include the teams': "1 of your VMs", as a user says it.
  const noun = scope === "own" ? "of your VMs" : count === 1 ? "VM" : "VMs";
  const what = glob === undefined ? noun : `${noun} matching ${code(glob)}`;
  if (count === 0) {
    const none = scope === "own" ? `You and your teams have no VMs${glob === undefined ? "" : ` matching ${code(glob)}`}.` : `No ${what}.`;
    return unread.length ? message([none, ...unread].join("\n"), [section(none), context(unread.join("\n"))]) : message(none, [section(none)]);
  }
  const head = `*${count} ${what}*${more > 0 ? ` (showing ${shown.length})` : ""}`;
  const left = (v: VmSummary) => (v.leaseExpires ? ` · lease ${leaseWords(v)!.replace(/ \(.*\)$/, "")}` : "");
  const line = (v: VmSummary) => `${POWER[v.powerState]} · ${v.numCpu} vCPU · ${memory(v.memoryMB)}${v.owner ? ` · <@${v.owner}>` : ""}${left(v)}`;
  // With several vCenters each VM says which one it is in, as `vc=` names it.
  const named = (v: ListedVm) => `${escape(v.name)}${v.vcenter !== undefined ? ` (vc=${escape(v.vcenter)})` : ""}`;
  const blocks: Block[] = [section(head)];
  for (let i = 0; i < shown.length; i += 5) {
    blocks.push(...fields(shown.slice(i, i + 5).flatMap((v) => [[named(v), line(v)] as const])));
  }
  const tail = more > 0 ? `…and ${more} more. Narrow the list with a pattern: ${code(`${SLASH} list web-*`)}.` : undefined;
  if (tail) blocks.push(context(tail));
  if (unread.length) blocks.push(context(unread.join("\n")));
  const text = [`${count} ${what}:`, ...shown.map((v) => `${named(v)}: ${PowerStateWords[v.powerState]}, ${v.numCpu} vCPU, ${memory(v.memoryMB)}`), ...(tail ? [tail] : []), ...unread].join("\n");
  return message(text, blocks);
}

/** A lease in a few words: `ends in 3 days (2027-01-31 12:00 UTC)`, `ended 2 hours ago`, `none`; undefined for a template. */
export function leaseWords(vm: Pick<VmSummary, "leaseExpires" | "leaseInvalid" | "template">, now = Date.now()): string | undefined {
  if (vm.template) return undefined;
  if (vm.leaseInvalid !== undefined) return `unreadable (${code(vm.leaseInvalid.slice(0, 40))}): no lease in force; IT fixes it`;
  if (!vm.leaseExpires) return "none";
  const at = Date.parse(vm.leaseExpires);
  const when = `${vm.leaseExpires.slice(0, 16).replace("T", " ")} UTC`;
  return at > now ? `ends in ${formatDuration(at - now)} (${when})` : `ended ${formatDuration(now - at)} ago (${when})`;
}

export function infoMessage(vm: VmInfo, actions: readonly Button[] = [], vcenter?: string): SlackMessage {
  const pairs: [string, string][] = [
    ["Power", POWER[vm.powerState]],
    ["CPU", `${vm.numCpu} vCPU${vm.cpuHotAddEnabled ? " (hot-add on)" : " (hot-add off)"}`],
    ["Memory", `${memory(vm.memoryMB)}${vm.memoryHotAddEnabled ? " (hot-add on)" : " (hot-add off)"}`],
    ["Disks", vm.disks.length ? vm.disks.map((d) => `${escape(d.label)}: ${gb(d.capacityGB)}${d.datastore ? ` on ${escape(d.datastore)}` : ""}`).join("\n") : "none"],
    ["Datastores", vm.datastores.length ? vm.datastores.map(escape).join(", ") : "none"],
    ["Host", vm.host ? escape(vm.host) : "unknown"],
    ["Guest OS", vm.guestOs ? escape(vm.guestOs) : "unknown"],
    ["IP address", vm.ipAddress ? escape(vm.ipAddress) : "none reported"],
    ["VMware Tools", vm.toolsStatus ? escape(Object.hasOwn(ToolsStatusWords, vm.toolsStatus) ? ToolsStatusWords[vm.toolsStatus]! : vm.toolsStatus) : "unknown"],
    ["Owner", vm.owner ? `<@${vm.owner}>` : "nobody (only IT admins act on it until it is adopted with `/iaas owner`)"],
    ["Team", vm.team ? teamLabel(vm.team) : "none"],
    ...(vm.snapshots !== undefined ? [["Snapshots", vm.snapshots === 0 ? "none" : `${vm.snapshots} (${code(`${SLASH} snapshot list ${vm.name}`)})`] as [string, string]] : []),
    ...(leaseWords(vm) !== undefined ? [["Lease", leaseWords(vm)!] as [string, string]] : []),
    ...(vcenter !== undefined ? [["vCenter", code(vcenter)] as [string, string]] : []),
  ];
  const title = `*${escape(vm.name)}*${vm.template ? " (template)" : ""}${vm.path ? ` · ${code(vm.path)}` : ""}`;
  const text = `${escape(vm.name)}: ${PowerStateWords[vm.powerState]}, ${vm.numCpu} vCPU, ${memory(vm.memoryMB)} memory, CPU hot-add ${vm.cpuHotAddEnabled ? "on" : "off"}, memory hot-add ${vm.memoryHotAddEnabled ? "on" : "off"}${vm.owner ? `, owner <@${vm.owner}>` : ""}${vm.ipAddress ? `, IP ${escape(vm.ipAddress)}` : ""}${vm.snapshots !== undefined ? `, ${vm.snapshots} snapshot${vm.snapshots === 1 ? "" : "s"}` : ""}${vcenter !== undefined ? `, vCenter ${escape(vcenter)}` : ""}`;
  return message(text, [
    section(title),
    ...fields(pairs),
    ...(vm.createdBy ? [context(`Made by request ${code(vm.createdBy)}`)] : []),
    ...(actions.length ? [{ type: "actions" as const, elements: actions.slice(0, 25) }] : []),
  ]);
}

/** `/iaas snapshot list <vm>`: the snapshots, parents before children, the current one marked, who made each. */
export function snapshotsMessage(vm: VmSummary, snapshots: readonly SnapshotInfo[], maxPerVm: number): SlackMessage {
  const head = `${escape(vm.name)} has ${snapshots.length} snapshot${snapshots.length === 1 ? "" : "s"} (the policy allows ${maxPerVm})`;
  if (snapshots.length === 0) return message(`${head}. Take one with ${SLASH} snapshot create ${escape(vm.name)}.`, [section(`*${head}*. Take one with ${code(`${SLASH} snapshot create ${vm.name}`)}.`)]);
  const shown = snapshots.slice(0, 40);
  const who = (s: SnapshotInfo) => (s.madeBy ? `by iaas for <@${s.madeBy.owner}>` : "made outside iaas");
  const line = (s: SnapshotInfo) => `${s.current ? "▶ " : ""}${escape(s.name)}: ${s.createdAt.slice(0, 16).replace("T", " ")} UTC, ${who(s)}${s.parent !== undefined ? `, after ${escape(s.parent)}` : ""}${s.current ? " (current)" : ""}`;
  return message([`${head}:`, ...shown.map(line)].join("\n"), [
    section(`*${head}*`),
    ...fields(shown.map((s) => [`${s.current ? ":arrow_forward: " : ""}${escape(s.name)}${s.current ? " (current)" : ""}`, `${slackDate(s.createdAt)} · ${who(s)}${s.parent !== undefined ? ` · after ${escape(s.parent)}` : ""}`] as const)),
    context(`Revert with ${code(`${SLASH} snapshot revert ${vm.name} [name]`)} (the current one by default); delete with ${code(`${SLASH} snapshot delete ${vm.name} <name>`)}.`),
  ]);
}

export function templatesMessage(templates: readonly TemplateInfo[]): SlackMessage {
  if (templates.length === 0) return message("There are no templates to deploy.", [section("There are no templates to deploy.")]);
  const shown = templates.slice(0, 40);
  const text = [`${templates.length} template${templates.length === 1 ? "" : "s"}:`, ...shown.map((t) => `${escape(t.name)}: ${escape(t.guestOs ?? "guest OS unknown")}, ${t.numCpu} vCPU, ${memory(t.memoryMB)}`)].join("\n");
  return message(text, [
    section(`*${templates.length} template${templates.length === 1 ? "" : "s"}* to deploy with ${code(`${SLASH} deploy <template> <name> [size]`)}`),
    ...fields(shown.map((t) => [escape(t.name), `${t.guestOs ? `${escape(t.guestOs)} · ` : ""}${t.numCpu} vCPU · ${memory(t.memoryMB)}`] as const)),
  ]);
}

export function sizesMessage(policy: Policy): SlackMessage {
  const sizes = policy.sizes();
  const def = policy.defaultSize.name;
  const l = policy.limits;
  const limits = `Limits: at most ${l.maxCpu} vCPU, ${memory(Math.round(l.maxMemoryGB * 1024))} memory, ${gb(l.maxDiskGB)} disk per VM.`;
  const text = [`VM sizes (default ${def}):`, ...sizes.map((s) => `${escape(s.name)}: ${describeSize(s)}`), limits].join("\n");
  return message(text, [
    section(`*VM sizes* (the default is ${code(def)})`),
    ...fields(sizes.map((s) => [`${escape(s.name)}${s.name === def ? " (default)" : ""}`, `${s.cpu} vCPU · ${memory(Math.round(s.memoryGB * 1024))} memory · ${gb(s.diskGB)} disk`] as const)),
    context(limits),
  ]);
}

/** One quota in `/iaas quota`: the caller's own or one of their teams'. */
export interface QuotaLine {
  kind: "user" | "team";
  id: string;
  /** What the VMs that exist use (vcenter-proxy). */
  used: Usage;
  /** What requests in flight (reserved, VM not made yet) hold. */
  held: { usage: Usage; count: number };
  limits: QuotaLimits;
}

const QUOTA_LABELS: Record<(typeof QUOTA_FIELDS)[number], string> = { vms: "VMs", cpu: "vCPU", memoryGB: "Memory (GB)", diskGB: "Disk (GB)" };
const num = (n: number) => String(+n.toFixed(3));

/** `/iaas quota`: use, reservations and limits, field by field, for the caller and each of their teams. */
export function quotaMessage(mine: QuotaLine, teams: readonly QuotaLine[]): SlackMessage {
  const title = (l: QuotaLine, mrk: boolean) =>
    l.kind === "user" ? "Your quota" : /^S[A-Z0-9]+$/.test(l.id) ? `Quota of ${mrk ? `<!subteam^${l.id}>` : l.id}` : `Quota of team ${mrk ? code(l.id) : escape(l.id)}`;
  const value = (l: QuotaLine, f: (typeof QUOTA_FIELDS)[number]) => {
    const held = l.held.usage[f] > 0 ? ` + ${num(l.held.usage[f])} reserved` : "";
    const limit = l.limits[f];
    return `${num(l.used[f])}${held} of ${limit === undefined ? "no limit" : num(limit)}`;
  };
  const blocks: Block[] = [];
  const plain: string[] = [];
  for (const l of [mine, ...teams]) {
    const inFlight = l.held.count ? ` (${l.held.count === 1 ? "1 request in flight holds" : `${l.held.count} requests in flight hold`} a share)` : "";
    blocks.push(sectionWithFields(`*${title(l, true)}*${inFlight}`, QUOTA_FIELDS.map((f) => [QUOTA_LABELS[f], value(l, f)] as const)));
    plain.push(`${title(l, false)}: ${QUOTA_FIELDS.map((f) => `${QUOTA_LABELS[f]} ${value(l, f)}`).join(", ")}${inFlight}`);
  }
  if (teams.length === 0) blocks.push(context("You are in no team the policy knows."));
  return message(plain.join("\n"), blocks.slice(0, MAX_BLOCKS));
}

/** `/iaas echo`: how the text parses and who the caller is to the policy. Nothing secret: no tokens, no URLs. */
export function echoMessage(text: string | undefined, parsed: ParseResult | undefined, actor: Actor, roles: readonly string[], requestId: string): SlackMessage {
  const shownText = text === undefined ? "(none)" : code(text.length > 500 ? `${text.slice(0, 499)}…` : text);
  const result = parsed === undefined ? "(nothing to parse)" : parsed.success ? `\`\`\`${escape(JSON.stringify(parsed.data)).replace(/`/g, "'")}\`\`\`` : `${parsed.error.code}: ${escape(parsed.error.message)}`;
  const pairs: [string, string][] = [
    ["Text", shownText],
    ["Parsed", result],
    ["User", `<@${actor.userId}> (${code(actor.userId)})`],
    ["Team", actor.teamId ? code(actor.teamId) : "unknown"],
    ["Channel", actor.channelId ? `<#${actor.channelId}> (${code(actor.channelId)})` : "unknown"],
    // Only the groups the policy names are carried (services/gateway/src/stores/usergroups.ts).
    ["Groups", actor.groups?.length ? actor.groups.map((g) => `<!subteam^${g}> (${code(g)})`).join(", ") : "none the policy names"],
    ["Roles", roles.length ? roles.map(code).join(", ") : "none"],
  ];
  const plain = `echo: text ${text === undefined ? "(none)" : JSON.stringify(text.slice(0, 500))}; parsed ${parsed === undefined ? "-" : parsed.success ? JSON.stringify(parsed.data) : parsed.error.code}; user ${actor.userId}; team ${actor.teamId ?? "-"}; channel ${actor.channelId ?? "-"}; groups ${actor.groups?.join(", ") || "none"}; roles ${roles.join(", ") || "none"} (request ${requestId})`;
  return message(plain, [...fields(pairs), context(`request ${code(requestId)}`)]);
}

export function auditMessage(rows: readonly AuditRow[], vm: string | undefined, scanned: number): SlackMessage {
  const what = vm === undefined ? "" : ` for ${code(vm)}`;
  if (rows.length === 0) return message(`No audit records${vm === undefined ? "" : ` for ${escape(vm)}`} in the latest ${scanned}.`, [section(`No audit records${what} in the latest ${scanned}.`)]);
  const icon: Record<string, string> = { succeeded: ":white_check_mark:", failed: ":x:", rejected: ":no_entry:", acted: ":robot_face:", deferred: ":hourglass:", skipped: ":fast_forward:" };
  const blocks: Block[] = [section(`*Latest ${rows.length} action${rows.length === 1 ? "" : "s"}${what}*, newest first`)];
  const lines: string[] = [];
  const clip = (m: string) => escape(m.length > 300 ? `${m.slice(0, 299)}…` : m) || "-";
  for (const row of rows) {
    const r = row.record;
    const when = `<!date^${Math.floor(Date.parse(r.at) / 1000)}^{date_short_pretty} {time_secs}|${r.at}>`;
    if (row.kind === "command") {
      const c = row.record;
      blocks.push(
        sectionWithFields(`${icon[c.outcome] ?? ""} ${code(c.command)}${c.vm ? ` ${code(c.vm)}` : ""}${c.vcenter ? ` (vc=${escape(c.vcenter)})` : ""} · request ${code(c.id)}`, [
          ["Who", `<@${c.actor.userId}> via ${c.actor.via}${c.approvedBy?.length ? `, approved by ${c.approvedBy.map((u) => `<@${u}>`).join(", ")}` : ""}`],
          ["When", when],
          ["Result", `${c.outcome}${c.code ? ` (${c.code})` : ""}`],
          ["Details", clip(c.message)],
        ]),
      );
      lines.push(`${c.at} ${c.actor.userId} ${escape(c.command)}${c.vm ? ` ${escape(c.vm)}` : ""}${c.vcenter ? ` (vc=${escape(c.vcenter)})` : ""}: ${c.outcome}${c.code ? ` (${c.code})` : ""}${c.approvedBy?.length ? ` approved by ${c.approvedBy.join(", ")}` : ""} (request ${c.id})`);
    } else {
      const o = row.record;
      const label = [o.kind, o.rule].filter(Boolean).join(".");
      const result = [o.decision, o.reason].filter(Boolean).join(": ") || "-";
      blocks.push(
        sectionWithFields(`${icon[o.decision ?? ""] ?? ":gear:"} ${code(label)}${o.vm ? ` ${code(o.vm)}` : o.datastore ? ` ${code(o.datastore)}` : ""}`, [
          ["Who", o.by && /^[UW][A-Z0-9]{2,20}$/.test(o.by) ? `<@${o.by}>` : escape(o.kind)],
          ["When", when],
          ["Result", escape(result)],
          ["Details", clip(o.message)],
        ]),
      );
      lines.push(`${o.at} ${o.by && /^[UW][A-Z0-9]{2,20}$/.test(o.by) ? o.by : o.kind} ${escape(label)}${o.vm ? ` ${escape(o.vm)}` : ""}: ${escape(result)}`);
    }
  }
  return message([`Latest actions${vm === undefined ? "" : ` for ${escape(vm)}`}:`, ...lines].join("\n"), blocks);
}

/** A time as Slack shows it in the reader's time zone, with the ISO text as fallback. */
const slackDate = (iso: string) => `<!date^${Math.floor(Date.parse(iso) / 1000)}^{date_short_pretty} {time}|${escape(iso)}>`;

function pauseFacts(p: RemediationPause): [string, string][] {
  return [
    ["Until", slackDate(p.until)],
    ["Paused by", `<@${escape(p.by)}>`],
    ["Since", slackDate(p.at)],
    ["Reason", p.reason ? escape(p.reason) : "-"],
  ];
}

/** The alarms not acted on during a pause (the audit trail's `skipped: paused` decisions), newest first. */
function skippedBlocks(skipped: { records: AuditRow[]; scanned: number }): { blocks: Block[]; lines: string[] } {
  const rows = skipped.records.filter((r) => r.kind === "other");
  if (rows.length === 0) return { blocks: [section("No alarms were held back by the pause.")], lines: ["No alarms were held back by the pause."] };
  const head = `*${rows.length}${rows.length >= AUDIT_SHOW ? "+" : ""} alarm${rows.length === 1 ? "" : "s"} not acted on during the pause*, newest first`;
  const lines = rows.map((r) => `${r.record.at} ${[r.record.rule, r.record.vm ?? r.record.datastore].filter(Boolean).map((x) => code(x!)).join(" ")}`);
  return { blocks: [section(head), section(lines.map((l) => `• ${l}`).join("\n"))], lines: [head.replace(/\*/g, ""), ...lines] };
}

/** ` in vCenter `x`` for a pause of one vCenter, "" for the pause of every vCenter. */
const inVcenter = (vcenter: string | undefined) => (vcenter === undefined ? "" : ` in vCenter ${code(vcenter)}`);
const vcFlag = (vcenter: string | undefined) => (vcenter === undefined ? "" : ` vc=${vcenter}`);

export function remediationPausedMessage(p: RemediationPause, extended: boolean): SlackMessage {
  const head = `:double_vertical_bar: Automatic remediation is ${extended ? "still paused, now" : "paused"}${inVcenter(p.vcenter)} until ${slackDate(p.until)}: alarms are recorded, not acted on. \`${SLASH} remediation resume${vcFlag(p.vcenter)}\` ends it sooner.`;
  return message(head, [section(head), sectionWithFields("*Pause*", pauseFacts(p))]);
}

/**
 * After `resume`: what the pause held back; for one vCenter's pause, whether the pause of every
 * vCenter still holds it (`still`).
 */
export function remediationResumedMessage(
  p: RemediationPause | undefined,
  skipped: { records: AuditRow[]; scanned: number } | undefined,
  vcenter?: string,
  still?: RemediationPause,
): SlackMessage {
  if (!p || !skipped) {
    const t = `:arrow_forward: Automatic remediation was not paused${inVcenter(vcenter)}; nothing changed.`;
    return message(t, [section(t)]);
  }
  const next = still ? `the pause of every vCenter still holds until ${slackDate(still.until)}` : "the next alarm is acted on";
  const head = `:arrow_forward: Automatic remediation is resumed${inVcenter(vcenter)}: ${next}. Alarms held back by the pause are not replayed.`;
  const s = skippedBlocks(skipped);
  return message([head, ...s.lines].join("\n"), [section(head), ...s.blocks]);
}

/** `status`: every pause in force (that of every vCenter first) with the alarms each held back. */
export function remediationStatusMessage(
  pauses: readonly { pause: RemediationPause; skipped: { records: AuditRow[]; scanned: number } }[],
  settings: { enabled: boolean; dryRun: boolean },
): SlackMessage {
  const mode = !settings.enabled ? "turned off in the policy (`remediation.enabled: false`)" : settings.dryRun ? "on, in dry run (decisions only, no changes)" : "on";
  if (pauses.length === 0) {
    const t = `:arrow_forward: Automatic remediation is not paused; it is ${mode}.`;
    return message(t, [section(t)]);
  }
  const lines: string[] = [];
  const blocks: Block[] = [];
  for (const [i, { pause: p, skipped }] of pauses.entries()) {
    const head = `:double_vertical_bar: Automatic remediation is paused${p.vcenter === undefined ? "" : inVcenter(p.vcenter)} until ${slackDate(p.until)}${p.vcenter === undefined ? " (every vCenter)" : ""}${i === 0 ? `; in the policy it is ${mode}` : ""}.`;
    const s = skippedBlocks(skipped);
    lines.push(head, ...s.lines);
    blocks.push(section(head), sectionWithFields("*Pause*", pauseFacts(p)), ...s.blocks);
  }
  return message(lines.join("\n"), blocks);
}
