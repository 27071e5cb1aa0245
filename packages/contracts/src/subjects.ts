import { token } from "./tokens.js";

/** Command areas and the actions each carries; a command's subject is `iaas.cmd.<area>.<action>`. */
export const CommandAreas = {
  power: ["on", "off", "reset", "suspend", "shutdown", "reboot"],
  vm: ["create", "clone", "deploy", "delete", "resize", "owner"],
  /** Snapshots of a VM (handled by vm-lifecycle); listing them is a query of vcenter-proxy. */
  snapshot: ["create", "revert", "delete"],
  /** A VM's lease (handled by lease-keeper): `extend` by the owner, team or an admin; `set` (or remove) by an admin. */
  lease: ["extend", "set"],
} as const;
export type CommandArea = keyof typeof CommandAreas;

export const Subjects = {
  /** JetStream: commands published by the gateway (or an admin); Nats-Msg-Id = command id. */
  command: (area: CommandArea, action: string) => `iaas.cmd.${token(area, "area")}.${token(action, "action")}`,
  commandsOf: (area: CommandArea) => `iaas.cmd.${token(area, "area")}.>`,
  commandsAll: "iaas.cmd.>",
  /** JetStream: progress and exactly one final result per command. */
  result: (id: string) => `iaas.result.${token(id, "command id")}`,
  resultsAll: "iaas.result.>",
  /** JetStream: vSphere events from the bridge or the poller, by event class. */
  event: (eventClass: string) => `vsphere.event.${token(eventClass, "event class")}`,
  eventsAll: "vsphere.event.>",
  /** JetStream: notices for the Slack notify channel (remediation, dead letters); Nats-Msg-Id = notice id. */
  notify: (kind: string) => `iaas.notify.${token(kind, "notice kind")}`,
  notifyAll: "iaas.notify.>",
  /** JetStream: who did what, when, with which outcome. Long retention. */
  audit: (kind: string) => `iaas.audit.${token(kind, "audit kind")}`,
  auditAll: "iaas.audit.>",
  /** JetStream: commands that kept failing and were given up on. */
  deadLetter: (area: CommandArea, action: string) => `iaas.dlq.${token(area, "area")}.${token(action, "action")}`,
  deadLettersAll: "iaas.dlq.>",
} as const;

/** Parses `iaas.cmd.<area>.<action>` back into its parts; undefined for anything else. */
export function parseCommandSubject(subject: string): { area: CommandArea; action: string } | undefined {
  const parts = subject.split(".");
  if (parts.length !== 4 || parts[0] !== "iaas" || parts[1] !== "cmd") return undefined;
  const area = parts[2] as CommandArea;
  const actions = CommandAreas[area] as readonly string[] | undefined;
  if (!actions || !actions.includes(parts[3]!)) return undefined;
  return { area, action: parts[3]! };
}

const DAY_NS = 24 * 60 * 60 * 1e9;

/** JetStream streams. Retention values are defaults an operator can change with `nats stream edit`. */
export const Streams = {
  commands: {
    name: "IAAS_COMMANDS",
    subjects: [Subjects.commandsAll],
    /** Dedupe window for Nats-Msg-Id (a repeated command id inside it is dropped). */
    duplicateWindowNs: 60 * 60 * 1e9,
    maxAgeNs: 7 * DAY_NS,
  },
  results: {
    name: "IAAS_RESULTS",
    subjects: [Subjects.resultsAll],
    duplicateWindowNs: 60 * 60 * 1e9,
    maxAgeNs: 1 * DAY_NS,
  },
  events: {
    name: "VSPHERE_EVENTS",
    subjects: [Subjects.eventsAll],
    duplicateWindowNs: 60 * 60 * 1e9,
    maxAgeNs: 7 * DAY_NS,
  },
  audit: {
    name: "IAAS_AUDIT",
    subjects: [Subjects.auditAll],
    duplicateWindowNs: 10 * 60 * 1e9,
    maxAgeNs: 365 * DAY_NS,
  },
  deadLetters: {
    name: "IAAS_DLQ",
    subjects: [Subjects.deadLettersAll],
    duplicateWindowNs: 10 * 60 * 1e9,
    maxAgeNs: 30 * DAY_NS,
  },
  /**
   * Notices for the Slack notify channel, kept until a gateway has posted them (a day: as long
   * as the gateway's `iaas_notices` bucket remembers a posted id, so a notice still in the stream
   * is never posted twice).
   */
  notices: {
    name: "IAAS_NOTICES",
    subjects: [Subjects.notifyAll],
    duplicateWindowNs: 60 * 60 * 1e9,
    maxAgeNs: 1 * DAY_NS,
  },
} as const;
export type StreamName = keyof typeof Streams;

/** Durable consumers, one per consuming service (instances of a service share it). */
export const Consumers = {
  power: { stream: Streams.commands.name, durable: "power", filter: Subjects.commandsOf("power"), maxDeliver: 5, ackWaitNs: 120e9 },
  vmLifecycle: { stream: Streams.commands.name, durable: "vm-lifecycle", filter: Subjects.commandsOf("vm"), maxDeliver: 5, ackWaitNs: 900e9 },
  gatewayResults: { stream: Streams.results.name, durable: "gateway-results", filter: Subjects.resultsAll, maxDeliver: 10, ackWaitNs: 30e9 },
  /**
   * The gateway posts each notice to the Slack notify channel (replicas share it). A failed post
   * comes back with a growing delay (2 s doubling to 5 min), for about three hours of tries.
   */
  gatewayNotices: { stream: Streams.notices.name, durable: "gateway-notices", filter: Subjects.notifyAll, maxDeliver: 40, ackWaitNs: 30e9 },
  /**
   * Remediation reads every vSphere event, one at a time and in order. An evacuation moves VMs
   * one after another; the handler tells JetStream it is still working, so the ack wait only
   * bounds how long a crashed instance holds an event.
   */
  remediation: { stream: Streams.events.name, durable: "remediation", filter: Subjects.eventsAll, maxDeliver: 10, ackWaitNs: 120e9 },
  /**
   * Remediation reads the command results too: a result that says a VM is now powered off (our
   * own `power off` / `power shutdown`) applies the changes deferred to its next power-off at
   * once, without waiting for vCenter's event or the periodic re-check.
   */
  remediationResults: { stream: Streams.results.name, durable: "remediation-results", filter: Subjects.resultsAll, maxDeliver: 10, ackWaitNs: 120e9 },
  /** vm-lifecycle's snapshot commands (a durable of their own, so a long VM clone does not hold them up). */
  vmSnapshots: { stream: Streams.commands.name, durable: "vm-lifecycle-snapshots", filter: Subjects.commandsOf("snapshot"), maxDeliver: 5, ackWaitNs: 600e9 },
  /** lease-keeper's lease commands (extend, set). */
  leaseKeeper: { stream: Streams.commands.name, durable: "lease-keeper", filter: Subjects.commandsOf("lease"), maxDeliver: 5, ackWaitNs: 120e9 },
} as const;

/** JetStream key-value buckets. */
export const Buckets = {
  /** Gateway: where to answer a command (response_url, channel), by command id. */
  requests: { name: "iaas_requests", ttlMs: 24 * 60 * 60 * 1000 },
  /** Command handlers: per-command state, for idempotent redelivery. */
  commandState: { name: "iaas_command_state", ttlMs: 7 * 24 * 60 * 60 * 1000 },
  /**
   * Gateway: commands waiting for their requester's Confirm / Cancel, by command id, so any
   * gateway replica can take the click. Kept 30 minutes (the longest confirmTtlSeconds), so a
   * consumed or expired confirmation is still known when someone clicks it again.
   */
  confirmations: { name: "iaas_confirmations", ttlMs: 30 * 60 * 1000 },
  /** Gateway: commands per user per minute (policy rateLimit), shared by every replica. */
  rateLimits: { name: "iaas_rate_limits", ttlMs: 2 * 60 * 1000 },
  /** Gateway: notice ids already posted to the notify channel, so each is posted once. */
  notices: { name: "iaas_notices", ttlMs: 24 * 60 * 60 * 1000 },
  /**
   * Remediation: events handled, cooldowns, cap episodes, changes deferred to a VM's next
   * power-off, and the actions-per-minute brake. 30 days: longer than the events stream keeps an
   * event (so a redelivery is always recognised); a change deferred that long is dropped.
   */
  remediation: { name: "iaas_remediation", ttlMs: 30 * 24 * 60 * 60 * 1000 },
  /**
   * Quota reservations per owner (`user.<U…>`) and per team (`team.<S…|name>`): what requests
   * that passed the quota check but have not finished yet hold, updated by compare-and-set so two
   * replicas never both take the last share. Written by the gateway and vm-lifecycle. Entries
   * inside carry their own expiry; the bucket keeps a key a day after its last write.
   */
  quotas: { name: "iaas_quotas", ttlMs: 24 * 60 * 60 * 1000 },
  /**
   * Approvals, one key per request (its approval id): the command waiting, the rule, the
   * approvers, the decisions, the card's place; every change by compare-and-set, so two clicks
   * settle it once. Written by the gateway (any replica); read by the command services, which run
   * an approved command only with its record. Kept 30 days after the last change (the longest
   * `expireAfterMinutes` is 30 days: an expired request is still known when its card is clicked).
   */
  approvals: { name: "iaas_approvals", ttlMs: 30 * 24 * 60 * 60 * 1000 },
  /**
   * lease-keeper: what it did about each lease end (`<moref>.<expiry>.<step>`: reminded,
   * powered off, deleted, kept), claimed by compare-and-set before it acts, so with any number of
   * replicas each step happens once; and `deletes-in-flight.<step key>`, written before a delete
   * is issued and removed once its notice and audit record are out, so a keeper killed in between
   * leaves the next round what it needs to tell. The lease itself lives on the VM (`iaas.lease.expires`).
   */
  leases: { name: "iaas_leases", ttlMs: 120 * 24 * 60 * 60 * 1000 },
  /** vm-lifecycle's snapshot retention sweep: the snapshots it has deleted or claimed, so each is deleted once. */
  snapshotSweep: { name: "iaas_snapshot_sweep", ttlMs: 30 * 24 * 60 * 60 * 1000 },
  /** The event poller's checkpoint per vCenter (the last key it published). Never expires. */
  eventPoller: { name: "iaas_event_poller", ttlMs: 0 },
  /**
   * A pause of automatic remediation (key `pause`): written only by the gateway (admins'
   * `/iaas remediation pause|resume`), read by remediation before it acts. Never expires: the
   * value carries its own end.
   */
  remediationControl: { name: "iaas_remediation_control", ttlMs: 0 },
} as const;

/** Names every service registers as a NATS micro service (`nats micro ls`). */
export const ServiceNames = {
  gateway: "gateway",
  vmLifecycle: "vm-lifecycle",
  power: "power",
  remediation: "remediation",
  vcenterProxy: "vcenter-proxy",
  vebaBridge: "veba-bridge",
  leaseKeeper: "lease-keeper",
} as const;

/** NATS headers we set. */
export const Headers = {
  msgId: "Nats-Msg-Id",
  requestId: "Iaas-Request-Id",
  traceparent: "traceparent",
  /** micro-service error headers, as @nats-io/services writes them. */
  serviceError: "Nats-Service-Error",
  serviceErrorCode: "Nats-Service-Error-Code",
} as const;
