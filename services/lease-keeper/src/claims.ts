import { z } from "zod";
import { IsoTimeSchema } from "@iaas/contracts";
import type { KV, Logger } from "@iaas/runtime";

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
