/**
 * Drift guard: what each service's source reaches for on NATS must be granted to its NATS user in
 * packages/contracts/src/permissions.ts. A service that starts calling a new vcenter-proxy
 * endpoint, opening a bucket or ensuring a stream fails here, not in production with a
 * permission violation. (A static scan of services/<name>/src; the live proof of the grants is
 * nats-permissions.test.ts.)
 */
import { describe, expect, it } from "vitest";
import { readFile, readdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { Buckets, Consumers, JsApi, KvApi, ProxyEndpoints, ServiceNames, Streams, mayPublish, natsUser, type NatsUserName } from "@iaas/contracts";

const root = fileURLToPath(new URL("../..", import.meta.url));

async function sources(service: string): Promise<string> {
  const dir = join(root, "services", service, "src");
  const files = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  const texts = await Promise.all(files.filter((f) => f.endsWith(".ts")).map((f) => readFile(join(dir, f), "utf8")));
  return texts.join("\n");
}

/** Buckets a service opens to read only: another service writes them (the gateway, an admin's pause). */
const READ_ONLY: Partial<Record<string, readonly string[]>> = { [ServiceNames.remediation]: [Buckets.remediationControl.name], [ServiceNames.vmLifecycle]: [Buckets.approvals.name], [ServiceNames.leaseKeeper]: [Buckets.approvals.name] };

function keys(text: string, re: RegExp): string[] {
  return [...new Set([...text.matchAll(re)].map((m) => m[1]!))];
}

describe.each(Object.values(ServiceNames))("%s", (service) => {
  const user = service as NatsUserName;

  it("may request every vcenter-proxy endpoint its source calls", async () => {
    const text = await sources(service);
    for (const k of keys(text, /ProxyEndpoints\.(\w+)/g)) {
      const ep = ProxyEndpoints[k as keyof typeof ProxyEndpoints];
      expect(ep, `ProxyEndpoints.${k}`).toBeDefined();
      // The proxy itself serves them; everyone else requests them.
      if (service === ServiceNames.vcenterProxy) continue;
      expect(mayPublish(user, ep.subject), `${service} calls ${ep.subject}`).toBe(true);
    }
  });

  it("may look up every stream, consumer and bucket its start-up ensures, and use them", async () => {
    const text = await sources(service);
    for (const list of keys(text, /ensureStreams\([^,]+,\s*\[([^\]]*)\]/g)) {
      for (const k of keys(list, /"(\w+)"/g)) {
        const s = Streams[k as keyof typeof Streams];
        expect(mayPublish(user, JsApi.streamInfo(s.name)), `${service} ensures stream ${s.name}`).toBe(true);
      }
    }
    for (const k of [...keys(text, /ensureConsumer\([^,]+,\s*"(\w+)"/g), ...keys(text, /consumer:\s*"(\w+)"/g)]) {
      const c = Consumers[k as keyof typeof Consumers];
      expect(c, `Consumers.${k}`).toBeDefined();
      expect(mayPublish(user, JsApi.consumerInfo(c.stream, c.durable)), `${service} looks up ${c.stream}/${c.durable}`).toBe(true);
      expect(mayPublish(user, JsApi.consumerNext(c.stream, c.durable)), `${service} pulls ${c.stream}/${c.durable}`).toBe(true);
    }
    for (const k of keys(text, /openBucket\([^,]+,\s*"(\w+)"/g)) {
      const b = Buckets[k as keyof typeof Buckets];
      expect(b, `Buckets.${k}`).toBeDefined();
      expect(mayPublish(user, JsApi.streamInfo(KvApi.stream(b.name))), `${service} opens ${b.name}`).toBe(true);
      const readOnly = READ_ONLY[service]?.includes(b.name) ?? false;
      expect(mayPublish(user, `$KV.${b.name}.probe`), `${service} ${readOnly ? "may not write" : "writes"} ${b.name}`).toBe(!readOnly);
      expect(mayPublish(user, JsApi.messageGet(KvApi.stream(b.name))), `${service} reads ${b.name}`).toBe(true);
      expect(mayPublish(user, `${JsApi.directGet(KvApi.stream(b.name))}.$KV.${b.name}.probe`), `${service} has no direct get on ${b.name}`).toBe(false);
    }
  });

  it("has a NATS user with a description", () => {
    expect(natsUser(user).description.length).toBeGreaterThan(10);
  });
});
