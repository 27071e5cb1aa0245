import type { ProxyRequest, ProxyResponse } from "@iaas/contracts";
import { toIaasError } from "./faults.js";
import type { Vcenter } from "./vcenter.js";

/**
 * Events newer than `afterKey`, oldest first. QueryEvents rather than a long-lived collector:
 * the simulator's collectors page wrongly once events outrun the page, and a stateless
 * read lets any proxy replica answer the poller. Keys increase monotonically in vCenter, so the
 * caller's checkpoint is the last key it published.
 */
export async function readEvents(vc: Vcenter, req: ProxyRequest<"eventsRead">): Promise<ProxyResponse<"eventsRead">> {
  try {
    // maxCount 1000 (the most vCenter allows): without it the simulator answers from a 10-event page
    // that holds the newest event and the oldest nine, so any event logged between two
    // polls other than the newest would never be read.
    const all = await vc.client.eventManager.queryEvents({ ...(req.eventTypes?.length ? { eventTypeId: req.eventTypes } : {}), maxCount: 1000 });
    const after = req.afterKey ?? -1;
    const sorted = all.filter((e) => e.key > after).sort((a, b) => a.key - b.key);
    const page = sorted.slice(0, req.maxCount ?? 100);
    const latestKey = all.reduce((m, e) => Math.max(m, e.key), after);
    return {
      events: page.map(({ _type, ...data }) => ({ eventClass: _type, key: data.key, createdTime: data.createdTime, data })),
      ...(latestKey >= 0 ? { latestKey } : {}),
    };
  } catch (err) {
    throw toIaasError(err, { action: "read vCenter events" });
  }
}
