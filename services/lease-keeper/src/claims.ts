import { z } from "zod";
import { IsoTimeSchema, VcenterIdSchema } from "@iaas/contracts";
import { kvKeys, readKvJson, type KV, type Logger } from "@iaas/runtime";

/**
 * One step of one lease end in `iaas_leases` (`<moref>.<expiry>.<step>`): claimed by a keeper
 * that is doing it, or done. A claim is taken by compare-and-set (create-if-absent, or an update
 * at the revision read), so of any number of replicas exactly one does each step; a claim older
 * than `staleMs` belongs to a keeper that died mid-step and is taken over (the steps are
 * idempotent: a power-off of a VM already off, a delete of a VM already gone, change nothing).
 */
export const StepRecordSchema = z.strictObject({
  state: z.enum(["claimed", "done"]),
  at: IsoTimeSchema,
  /** The keeper instance that claimed it (logs only). */
  by: z.string().max(80),
  /** What came of it, for the next steps and operators: `powered-off`, `already-off`, `deleted`, `kept`, `sent`. */
  outcome: z.string().max(40).optional(),
});
export type StepRecord = z.infer<typeof StepRecordSchema>;

export class StepClaims {
  constructor(
    private readonly kv: KV,
    private readonly o: { by: string; staleMs: number; now: () => number; log: Logger },
  ) {}

  /** The step's record, if any (an unreadable one counts as none). */
  async read(key: string): Promise<{ record: StepRecord; revision: number } | undefined> {
    const e = await this.kv.get(key);
    if (!e || e.operation !== "PUT" || e.length === 0) return undefined;
    let raw: unknown;
    try {
      raw = e.json();
    } catch {
      raw = undefined;
    }
    const r = StepRecordSchema.safeParse(raw);
    return r.success ? { record: r.data, revision: e.revision } : undefined;
  }

  /** Takes the step for this keeper: true when it is ours to do now. */
  async claim(key: string): Promise<boolean> {
    const e = await this.kv.get(key);
    const revision = e?.revision ?? 0;
    if (e && e.operation === "PUT" && e.length > 0) {
      const cur = await this.read(key);
      if (cur?.record.state === "done") return false;
      if (cur && this.o.now() - Date.parse(cur.record.at) < this.o.staleMs) return false;
      if (cur) this.o.log.warn({ key, by: cur.record.by, at: cur.record.at }, "taking over a lease step whose keeper did not finish it");
    }
    const rec: StepRecord = { state: "claimed", at: new Date(this.o.now()).toISOString(), by: this.o.by };
    try {
      // previousSeq: the write lands only if nobody wrote the key since it was read (0: never written).
      await this.kv.put(key, JSON.stringify(rec), { previousSeq: revision });
      return true;
    } catch (err) {
      if (isWrongLastSequence(err)) return false;
      throw err;
    }
  }

  async done(key: string, outcome: string): Promise<void> {
    const rec: StepRecord = { state: "done", at: new Date(this.o.now()).toISOString(), by: this.o.by, outcome };
    await this.kv.put(key, JSON.stringify(rec));
  }

  /** Gives a claimed step back (it turned out not to be due: the lease changed meanwhile). */
  async release(key: string): Promise<void> {
    await this.kv.delete(key);
  }
}

/** JetStream's "wrong last sequence" (10071): the compare-and-set lost. */
export function isWrongLastSequence(err: unknown): boolean {
  const e = err as { code?: unknown; api_error?: { err_code?: unknown } } | undefined;
  return e?.code === 10071 || e?.api_error?.err_code === 10071 || /wrong last sequence/i.test(String((err as Error | undefined)?.message));
}

/**
 * `deletes-in-flight.<step key>` in `iaas_leases`: written before a lease-end delete is issued,
 * removed once its notice and audit record are out. A keeper killed in between leaves it; the
 * next round of any keeper finishes it (`LeaseKeeper.finishDeletes`): the VM being gone from
 * vCenter, it sends what this one would have, under the same ids. It holds all they need, since
 * a deleted VM can no longer be read.
 */
export const DeleteInFlightSchema = z.strictObject({
  vm: z.strictObject({
    name: z.string().max(255),
    path: z.string().max(2000).optional(),
    moref: z.string().max(80),
    owner: z.string().max(255).optional(),
    team: z.string().max(255).optional(),
  }),
  /** The vCenter the VM is in, when not the default one. */
  vcenter: VcenterIdSchema.optional(),
  expires: IsoTimeSchema,
  /** Where the notice goes (the team's channel or the owner) as it was when the delete was issued. */
  to: z.string().max(80).optional(),
  /** The notice's text and the audit record's message. */
  text: z.string().max(3000),
  message: z.string().max(3000),
  by: z.string().max(80),
  at: IsoTimeSchema,
});
export type DeleteInFlight = z.infer<typeof DeleteInFlightSchema>;

const IN_FLIGHT = "deletes-in-flight";
/** The marker's key of one step's delete. */
export const inFlightKey = (stepKey: string) => `${IN_FLIGHT}.${stepKey}`;

export class DeletesInFlight {
  constructor(
    private readonly kv: KV,
    private readonly log: Logger,
  ) {}

  async put(stepKey: string, rec: DeleteInFlight): Promise<void> {
    await this.kv.put(inFlightKey(stepKey), JSON.stringify(DeleteInFlightSchema.parse(rec)));
  }

  async remove(stepKey: string): Promise<void> {
    await this.kv.delete(inFlightKey(stepKey));
  }

  /** Every marker, by step key (an unreadable one is logged and skipped). */
  async all(): Promise<{ stepKey: string; record: DeleteInFlight }[]> {
    const out: { stepKey: string; record: DeleteInFlight }[] = [];
    for (const key of new Set(await kvKeys(this.kv, `${IN_FLIGHT}.>`))) {
      const r = await readKvJson(this.kv, key, DeleteInFlightSchema, this.log, "lease delete in flight");
      if (r) out.push({ stepKey: key.slice(IN_FLIGHT.length + 1), record: r.value });
    }
    return out;
  }
}
