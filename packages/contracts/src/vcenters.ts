/**
 * VCENTER_SOURCES: which vCenter (an id of vcenter-proxy's VCENTERS, or `default`) sent an event,
 * by its CloudEvent `source`. Comma-separated `id=source` pairs, e.g.
 * `default=https://vc-a.example.com/sdk,dr-site=https://vc-b.example.com/`. A source matches an
 * event whose source equals it or starts with it; the longest matching prefix wins.
 */
export interface VcenterSource {
  id: string;
  source: string;
}

import { z } from "zod";

const ID = /^[a-z0-9-]{1,32}$/;

/** A vCenter's id: `default` or one of vcenter-proxy's VCENTERS (1-32 of a-z 0-9 -). */
export const VcenterIdSchema = z.string().regex(ID, "must be a vCenter id: 1 to 32 of a-z, 0-9 and -");

/** Parses VCENTER_SOURCES; throws an Error naming the bad pair. Empty or unset: no routing (`[]`). */
export function parseVcenterSources(text: string | undefined): VcenterSource[] {
  const out: VcenterSource[] = [];
  for (const raw of (text ?? "").split(",")) {
    const pair = raw.trim();
    if (!pair) continue;
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new Error(`VCENTER_SOURCES: "${pair}" is not id=source`);
    const id = pair.slice(0, eq).trim();
    const source = pair.slice(eq + 1).trim();
    if (!ID.test(id)) throw new Error(`VCENTER_SOURCES: "${id}" is not a vCenter id (1-32 of a-z 0-9 -)`);
    if (!source) throw new Error(`VCENTER_SOURCES: ${id} has an empty source`);
    if (out.some((s) => s.source === source)) throw new Error(`VCENTER_SOURCES: the source ${source} is given twice`);
    out.push({ id, source });
  }
  return out;
}

/**
 * The vCenter an event's source belongs to: `default` when no sources are configured (one vCenter,
 * as before), else the id of the longest configured source the event's source equals or starts
 * with, else undefined (an unknown vCenter).
 */
export function vcenterOfSource(sources: readonly VcenterSource[], source: string): string | undefined {
  if (sources.length === 0) return "default";
  let best: VcenterSource | undefined;
  for (const s of sources) {
    if (source === s.source || source.startsWith(s.source)) {
      if (!best || s.source.length > best.source.length) best = s;
    }
  }
  return best?.id;
}
