import { TimeoutError, type MoRef, type VimClient } from "@iaas/vsphere";

/**
 * Waits until `path` of `obj` satisfies `done`, through a private property collector and
 * WaitForUpdatesEx (as govmomi's property.Wait does), not by polling. For changes that have no
 * task, such as a guest shutdown: the call returns when the guest was asked, the VM is off later.
 */
export async function waitForValue(client: VimClient, obj: MoRef, path: string, done: (value: unknown) => boolean, timeoutMs: number): Promise<unknown> {
  const deadline = Date.now() + timeoutMs;
  return client.withSessionObjects(async () => {
    const pc = await client.propertyCollector.createPropertyCollector();
    try {
      await pc.createFilter({ propSet: [{ type: obj.type, pathSet: [path] }], objectSet: [{ obj, skip: false }] }, false);
      let version = "";
      let value: unknown;
      for (;;) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) throw new TimeoutError(`${obj.value}.${path} did not reach the expected value within ${timeoutMs} ms`, { timeoutMs });
        const update = await pc.waitForUpdatesEx(version, Math.min(60, Math.ceil(remaining / 1000)));
        if (update) {
          if (typeof update.version === "string") version = update.version;
          for (const fu of list(update.filterSet)) {
            for (const ou of list((fu as { objectSet?: unknown }).objectSet)) {
              for (const ch of list((ou as { changeSet?: unknown }).changeSet)) {
                const c = ch as { name?: unknown; val?: unknown };
                if (c.name === path) value = c.val;
              }
            }
          }
        }
        if (done(value)) return value;
      }
    } finally {
      await pc.destroyPropertyCollector().catch(() => undefined);
    }
  });
}

function list(v: unknown): unknown[] {
  return v === undefined || v === null ? [] : Array.isArray(v) ? v : [v];
}
