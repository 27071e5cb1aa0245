/**
 * Seam for the built-in vCenter event poller (SPEC: "or the built-in poller reading vCenter events
 * through vcenter-proxy"). Not built yet: it waits for an events endpoint on vcenter-proxy.
 *
 * The plan, so the two paths stay interchangeable:
 * - ask vcenter-proxy (NATS request/reply, a `ProxyEndpoints` entry in @iaas/contracts) for the
 *   events after the last key seen (an EventHistoryCollector read through the property collector);
 * - keep the last key per vCenter in a KV bucket so a restart resumes where it left off;
 * - publish each event exactly as the bridge does: a `VsphereEvent` with `via: "poller"`, `id` =
 *   the key, `source` = the same `https://<vcenter>/sdk` URL VEBA uses, on `eventSubject(eventClass)`
 *   with Nats-Msg-Id `eventMsgId(source, key)`, so an event seen by both VEBA and the poller is stored once;
 * - `data` in the same PascalCase shape VEBA sends, so `normalizeVsphereEvent` reads both alike.
 */
export {};
