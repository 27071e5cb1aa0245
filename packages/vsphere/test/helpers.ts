import { startVcsim, type Vcsim, type VcsimOptions } from "@iaas/testkit";
import { VimClient, type MoRef, type VimClientOptions } from "@iaas/vsphere";
import { expect } from "vitest";

export async function connect(sim: Vcsim, extra: Partial<VimClientOptions> = {}): Promise<VimClient> {
  return VimClient.connect({ url: sim.url, username: sim.username, password: sim.password, timeoutMs: 15_000, ...extra });
}

export { startVcsim, type Vcsim, type VcsimOptions };

/** Looks up an inventory path and fails the test if it is not there. */
export async function mustFind(client: VimClient, path: string): Promise<MoRef> {
  const ref = await client.searchIndex.findByInventoryPath(path);
  expect(ref, `inventory path ${path}`).toBeDefined();
  return ref!;
}

/** The rejection of a promise, failing the test if it resolves. */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected the promise to reject, but it resolved");
}
