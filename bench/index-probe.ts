/**
 * The live inventory index alone at a given inventory size: a simulator with `-vm=<per pool>`
 * (two pools, so twice that many VMs), one client that logs in and starts `VmIndex`, under the
 * proxy's heap limits. Prints one JSON line: VMs, time from start to live, this process's CPU
 * for it, the peak heap while building, the heap the index holds per VM (after a full GC) and RSS.
 *
 *   node --expose-gc --max-semi-space-size=1 --max-old-space-size=96 --import tsx bench/index-probe.ts 5000
 */
import { startVcsim } from "@iaas/testkit";
import { VimClient, VmIndex } from "@iaas/vsphere";

const perPool = Number(process.argv[2] ?? 5000);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const sim = await startVcsim({ vmsPerPool: perPool, demo: false });
try {
  const client = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password, timeoutMs: 300_000 });
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  let peakHeap = 0;
  const sampler = setInterval(() => (peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed)), 50);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const index = new VmIndex(client);
  await index.start();
  const liveMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sampler);
  gc();
  const mb = (b: number) => Math.round(b / 1048576);
  process.stdout.write(
    `${JSON.stringify({
      vms: index.size,
      liveMs: Math.round(liveMs),
      cpuMs: Math.round((cpu.user + cpu.system) / 1000),
      peakHeapMB: mb(peakHeap),
      indexBytesPerVm: Math.round((process.memoryUsage().heapUsed - heapBefore) / index.size),
      rssMB: mb(process.memoryUsage().rss),
    })}\n`,
  );
  await index.stop();
  await client.logout();
} finally {
  await sim.stop();
}
