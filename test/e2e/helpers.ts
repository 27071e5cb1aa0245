/**
 * What the end-to-end tests do as Slack, as an operator on NATS, and as an observer of vCenter.
 * Only Slack is a stand-in; everything here goes over real HTTP, real NATS or real SOAP.
 */
import { randomUUID } from "node:crypto";
import { Streams, Subjects, ResultSchema, type Command, type FinalResult } from "@iaas/contracts";
import { encodeJson, jetstreamFor } from "@iaas/runtime";
import { VirtualMachine, listVmSummaries, type MoRef } from "@iaas/vsphere";
import { blockActionsBody, postSigned, waitUntil, type RecordedCall } from "@iaas/testkit";
import { SIGNING_SECRET, type System } from "./harness.js";

export const ID = /\(request `(r-[a-z2-7]{24})`\)/;

export function textOf(json: unknown): string {
  return String((json as { text?: unknown } | undefined)?.text ?? "");
}

export function idOf(json: unknown): string {
  const m = ID.exec(textOf(json));
  if (!m?.[1]) throw new Error(`no request id in: ${textOf(json)}`);
  return m[1];
}

/** Every VM's facts as the test's own SOAP session sees them, by name (templates included). */
export async function inventory(sys: System): Promise<Map<string, { powerState: string; cpu: number | undefined; memoryMB: number | undefined; count: number }>> {
  const out = new Map<string, { powerState: string; cpu: number | undefined; memoryMB: number | undefined; count: number }>();
  for (const v of await listVmSummaries(sys.observer)) {
    const prev = out.get(v.name);
    out.set(v.name, { powerState: v.powerState, cpu: v.numCPU, memoryMB: v.memoryMB, count: (prev?.count ?? 0) + 1 });
  }
  return out;
}

/** A snapshot of vCenter that tells whether anything changed. */
export async function fingerprint(sys: System): Promise<string> {
  return JSON.stringify([...(await inventory(sys)).entries()].sort(([a], [b]) => a.localeCompare(b)));
}

/** Posts to a response_url that satisfy `pred`; waits for at least one. */
export async function postsMatching(sys: System, responseUrl: string, pred: (text: string, call: RecordedCall) => boolean): Promise<RecordedCall[]> {
  return sys.slack.waitFor(() => {
    const hits = sys.slack.postsTo(responseUrl).filter((c) => pred(textOf(c.body), c));
    return hits.length > 0 && hits;
  }, 30_000);
}

/** The final result (✅ or ❌) posted for a command, by its response_url. */
export async function finalPost(sys: System, responseUrl: string): Promise<string> {
  const [p] = await postsMatching(sys, responseUrl, (t) => t.startsWith(":white_check_mark:") || t.startsWith(":x:"));
  return textOf(p!.body);
}

/**
 * A VM made behind the product's back (as IT would in the vSphere client): a clone of
 * DC0_H0_VM0 into `folder`, which the product did not record an owner for. The simulator accepts
 * duplicate names, which is how an ambiguous name is made.
 */
export async function rawClone(sys: System, name: string, opts: { folder?: string; powerOn?: boolean } = {}): Promise<MoRef> {
  const c = sys.observer;
  const source = await c.searchIndex.findByInventoryPath("/DC0/vm/DC0_H0_VM0");
  const folder = await c.searchIndex.findByInventoryPath(opts.folder ?? "/DC0/vm");
  if (!source || !folder) throw new Error("simulator inventory is not the expected one");
  const ref = (await (await new VirtualMachine(c, source).clone(folder, name, { location: {}, template: false, powerOn: false })).wait({ timeoutMs: 30_000 })) as MoRef;
  if (opts.powerOn) await (await new VirtualMachine(c, ref).powerOn()).wait({ timeoutMs: 30_000 });
  return ref;
}

/** A VM folder under /DC0/vm. */
export async function makeFolder(sys: System, name: string): Promise<void> {
  const c = sys.observer;
  const parent = await c.searchIndex.findByInventoryPath("/DC0/vm");
  if (!parent) throw new Error("no /DC0/vm");
  await c.folder(parent).createFolder(name);
}

/** A signed `block_actions` click on a Confirm or Cancel button, from `userId`. */
export async function click(sys: System, opts: ClickOptions): Promise<{ status: number; responseUrl: string }> {
  const responseUrl = sys.slack.responseUrl(`click-${randomUUID()}`);
  const r = await postSigned(sys.gatewayUrl, blockActionsBody(clickPayload(opts, responseUrl)), { secret: SIGNING_SECRET });
  return { status: r.status, responseUrl };
}

export interface ClickOptions {
  userId: string;
  /** `confirm` → action id `iaas.confirm`; a full action id (with a dot) is taken as it is. */
  action: "confirm" | "cancel" | (string & {});
  value: string;
  teamId?: string;
  /** The channel the clicked message is in (default C0001; a DM's is D…). */
  channelId?: string;
}

/** The `block_actions` payload of a Confirm / Cancel click, as Slack sends it (a form field over HTTP, an envelope in Socket Mode). */
export function clickPayload(opts: ClickOptions, responseUrl: string): Record<string, unknown> {
  return {
    type: "block_actions",
    user: { id: opts.userId, username: "someone", team_id: opts.teamId ?? "T0001" },
    api_app_id: "A0001",
    token: "deprecated-verification-token",
    container: { type: "message", message_ts: "1700000000.000100", channel_id: opts.channelId ?? "C0001", is_ephemeral: true },
    trigger_id: `${Date.now()}.1.${randomUUID()}`,
    team: { id: opts.teamId ?? "T0001", domain: "example" },
    channel: { id: opts.channelId ?? "C0001", name: "iaas" },
    response_url: responseUrl,
    actions: [{ type: "button", action_id: opts.action.includes(".") ? opts.action : `iaas.${opts.action}`, block_id: `b-${opts.value.slice(0, 200)}`, value: opts.value, text: { type: "plain_text", text: opts.action }, action_ts: `${Date.now() / 1000}` }],
  };
}

/** The Confirm / Cancel buttons of a prompt (the ack), with the value they carry. */
export function buttonsOf(json: unknown): { actionId: string; value: string; style?: string }[] {
  const blocks = ((json as { blocks?: { type: string; elements?: { action_id: string; value: string; style?: string }[] }[] }).blocks ?? []).filter((b) => b.type === "actions");
  return blocks.flatMap((b) => (b.elements ?? []).map((e) => ({ actionId: e.action_id, value: e.value, ...(e.style ? { style: e.style } : {}) })));
}

/** Publishes a command as an operator would with the NATS CLI, and waits for its final result. */
export async function publishCommand(sys: System, cmd: Command): Promise<FinalResult> {
  const { js, jsm } = await jetstreamFor(sys.nc);
  const action = cmd.action;
  await js.publish(Subjects.command(cmd.area, action), encodeJson(cmd), { msgID: cmd.id });
  return waitUntil(
    `the final result of ${cmd.id}`,
    async () => {
      const m = await jsm.streams.getMessage(Streams.results.name, { last_by_subj: Subjects.result(cmd.id) }).catch(() => null);
      if (!m) return undefined;
      const r = ResultSchema.parse(m.json());
      return r.status === "progress" ? undefined : r;
    },
    30_000,
  );
}

export function natsId(prefix: string): string {
  return `${prefix}-${randomUUID().replace(/-/g, "").slice(0, 16)}`;
}

export function actor(userId: string) {
  return { userId, via: "nats" as const };
}

export function now(): string {
  return new Date().toISOString();
}

/** The first defined (and not false) value of `f`, polled every 300 ms up to `timeoutMs`. */
export async function waitFor<T>(f: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 300));
  }
}
