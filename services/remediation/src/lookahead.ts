import { Streams, VsphereEventSchema, eventSubject, normalizeVsphereEvent, type NormalizedVsphereEvent, type ObjRef, type VsphereEvent } from "@iaas/contracts";
import type { Jet } from "@iaas/runtime";
import type { MsgRequest } from "@nats-io/jetstream";

/** An alarm on an object, as events name them: by moref when both sides carry one, else by name. */
function sameRef(a: ObjRef | undefined, b: ObjRef | undefined): boolean {
  if (!a || !b) return false;
  if (a.value && b.value) return a.value === b.value;
  return a.name !== undefined && a.name.toLowerCase() === b.name?.toLowerCase();
}

export interface LaterStatus {
  /** The newest status of the alarm on the entity, e.g. `green`. */
  to: string;
  key: number;
}

/**
 * Whether the stream already holds a newer status of the same alarm on the same entity (from the
 * same vCenter) than `ev`, stored after it: remediation runs behind when it was down or busy, and
 * an alarm that has gone back to green since must not be acted on. Returns the newest such status.
 *
 * Reads forward from `afterSeq` with STREAM.MSG.GET `next_by_subj` (nats-server 2.9+); only the
 * alarm events' subject is read, so the cost is the alarm events queued behind this one.
 */
export async function newerAlarmStatus(jet: Jet, afterSeq: number, ev: VsphereEvent, n: NormalizedVsphereEvent): Promise<LaterStatus | undefined> {
  const subject = eventSubject(ev.eventClass);
  let newest: LaterStatus | undefined;
  let seq = afterSeq + 1;
  for (;;) {
    // nats.js types next_by_subj only for direct get; the server takes it on STREAM.MSG.GET too,
    // and nats.js passes the query through unchanged.
    const query = { seq, next_by_subj: subject } as unknown as MsgRequest;
    const m = await jet.jsm.streams.getMessage(Streams.events.name, query);
    if (!m) return newest;
    seq = m.seq + 1;
    let other: VsphereEvent;
    try {
      const parsed = VsphereEventSchema.safeParse(m.json());
      if (!parsed.success) continue;
      other = parsed.data;
    } catch {
      continue;
    }
    if (other.source !== ev.source || other.key <= ev.key) continue;
    const o = normalizeVsphereEvent(other);
    if (!o.to || !sameRef(o.alarm, n.alarm) || !sameRef(o.entity, n.entity)) continue;
    if (!newest || o.key > newest.key) newest = { to: o.to, key: o.key };
  }
}
