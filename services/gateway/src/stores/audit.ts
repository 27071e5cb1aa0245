import { z } from "zod";
import { ApprovalAuditSchema, CommandAuditSchema, CommandMsgIds, type ApprovalAudit, IaasError, Streams, Subjects, type Actor, type CommandAudit, type ErrorCode } from "@iaas/contracts";
import { encodeJson, type JetStreamClient, type JetStreamManager, type Logger } from "@iaas/runtime";

/**
 * A record of another kind (remediation's decisions, and whatever kinds come later), read loosely:
 * `/iaas audit` shows what every record has, so a new kind never hides the trail.
 */
const OtherAuditSchema = z.object({
  kind: z.string(),
  id: z.string(),
  message: z.string(),
  at: z.string(),
  vm: z.string().optional(),
  datastore: z.string().optional(),
  /** The vCenter, when a record names one (not the default one). */
  vcenter: z.string().optional(),
  decision: z.string().optional(),
  rule: z.string().optional(),
  reason: z.string().optional(),
  /** Who made it, when a person did (an approval's approver or requester). */
  by: z.string().optional(),
});
export type AuditRow = { kind: "command"; record: CommandAudit } | { kind: "other"; record: z.infer<typeof OtherAuditSchema> };

/** How far back `/iaas audit` looks (messages), and how many records it shows. */
export const AUDIT_SCAN = 500;
export const AUDIT_SHOW = 15;

/**
 * The gateway's side of the audit trail: commands it refuses (not allowed, protected, bad input,
 * an expired or cancelled confirmation) never reach a command service, so the gateway records
 * them; and `/iaas audit` reads the trail back. Publishing never holds up Slack's ack: it runs
 * in the background and is awaited on stop.
 */
export class Auditor {
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    private readonly d: { js: JetStreamClient; jsm: JetStreamManager; log: Logger; now: () => number },
  ) {}

  rejected(actor: Actor, id: string, command: string, vm: string | undefined, code: ErrorCode | undefined, message: string, vcenter?: string): Promise<boolean> {
    return this.record(actor, id, command, vm, "rejected", code, message, vcenter);
  }

  succeeded(actor: Actor, id: string, command: string, vm: string | undefined, message: string): Promise<boolean> {
    return this.record(actor, id, command, vm, "succeeded", undefined, message);
  }

  /**
   * A transition of a request for approval (`iaas.audit.approval`); one record per transition and
   * clicker: the Nats-Msg-Id is the approval id, the transition and who made it, so the sweep
   * storing a settled request's record again (its replica died before marking it audited) is dropped.
   */
  approval(rec: ApprovalAudit): Promise<boolean> {
    const parsed = ApprovalAuditSchema.parse(rec);
    const msgID = `approval-${parsed.id}-${parsed.decision}-${parsed.by ?? "sweep"}${parsed.decision === "refused" ? `-${parsed.at}` : ""}`;
    return this.track(this.d.js.publish(Subjects.audit("approval"), encodeJson(parsed), { msgID }).then(() => undefined), parsed.request);
  }

  /** Same subject and Nats-Msg-Id scheme as the command services' records (runtime's publishAudit). */
  private record(actor: Actor, id: string, command: string, vm: string | undefined, outcome: "rejected" | "succeeded", code: ErrorCode | undefined, message: string, vcenter?: string): Promise<boolean> {
    const rec = CommandAuditSchema.parse({
      kind: "command",
      id,
      actor,
      command,
      ...(vm ? { vm } : {}),
      ...(vcenter !== undefined ? { vcenter } : {}),
      outcome,
      ...(code ? { code } : {}),
      message: message.slice(0, 3000),
      at: new Date(this.d.now()).toISOString(),
    });
    return this.track(this.d.js.publish(Subjects.audit("command"), encodeJson(rec), { msgID: CommandMsgIds.audit(id, outcome) }).then(() => undefined), id);
  }

  private track(p: Promise<void>, id: string): Promise<boolean> {
    const q = p.then(
      () => true,
      (err: unknown) => {
        this.d.log.error({ err, requestId: id }, "audit publish failed");
        return false;
      },
    );
    this.pending.add(q);
    void q.finally(() => this.pending.delete(q));
    return q;
  }

  async flush(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  /**
   * The newest audit records, newest first: read back from the end of the IAAS_AUDIT stream, at
   * most AUDIT_SCAN messages, keeping those about `vm` when one is given: every record names the VM
   * it acted on or made.
   */
  async latest(opts: { vm?: string | undefined; limit?: number; match?: (row: AuditRow) => boolean } = {}): Promise<{ records: AuditRow[]; scanned: number }> {
    const limit = opts.limit ?? AUDIT_SHOW;
    const name = Streams.audit.name;
    let info;
    try {
      info = await this.d.jsm.streams.info(name);
    } catch (err) {
      throw new IaasError("IAAS_UNAVAILABLE", "The audit trail cannot be read right now.", { cause: err });
    }
    const { first_seq: first, last_seq: last, messages } = info.state;
    const out: AuditRow[] = [];
    let scanned = 0;
    if (messages === 0) return { records: out, scanned };
    const floor = Math.max(first, last - AUDIT_SCAN + 1);
    const batch = 25;
    for (let hi = last; hi >= floor && out.length < limit; hi -= batch) {
      const seqs: number[] = [];
      for (let s = hi; s > hi - batch && s >= floor; s--) seqs.push(s);
      const msgs = await Promise.all(seqs.map((seq) => this.d.jsm.streams.getMessage(name, { seq }).catch(() => null)));
      for (const m of msgs) {
        scanned += 1;
        if (!m) continue;
        let raw: unknown;
        try {
          raw = m.json();
        } catch {
          continue;
        }
        const c = CommandAuditSchema.safeParse(raw);
        const o = c.success ? undefined : OtherAuditSchema.safeParse(raw);
        const row: AuditRow | undefined = c.success ? { kind: "command", record: c.data } : o?.success ? { kind: "other", record: o.data } : undefined;
        if (!row) continue;
        if (opts.vm !== undefined && row.record.vm !== opts.vm) continue;
        if (opts.match && !opts.match(row)) continue;
        out.push(row);
        if (out.length >= limit) break;
      }
    }
    return { records: out, scanned };
  }
}
