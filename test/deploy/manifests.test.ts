/**
 * Everything under deploy/ that is YAML parses, and the essentials hold: each service's Deployment
 * probes /healthz and /readyz on the port its HEALTH_PORT names, has requests and limits, runs
 * non-root and read-only, takes credentials only from Secrets; kustomizations list files that
 * exist; compose wires NATS, the bootstrap, every service and the simulator.
 *
 * There is no Docker engine here and the docker CLI has no compose plugin, so `docker compose
 * config` cannot run: compose.yaml is checked structurally instead (interpolation, anchors and
 * the references between services). When kubectl is on PATH the example overlay is also rendered
 * with `kubectl kustomize`.
 */
import { describe, expect, it } from "vitest";
import { readFile, readdir, stat } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join, relative } from "node:path";
import { parseAllDocuments } from "yaml";
import { NatsPermissions, ServiceNames, natsPasswordEnv } from "@iaas/contracts";
import { renderHelmValues } from "../../deploy/nats/render.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const deploy = join(root, "deploy");
const SERVICES = Object.values(ServiceNames);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;

async function yamlFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await yamlFiles(p)));
    else if (/\.ya?ml$/.test(e.name)) out.push(p);
  }
  return out.sort();
}

async function load(path: string): Promise<Doc[]> {
  const docs = parseAllDocuments(await readFile(path, "utf8"), { merge: true });
  for (const d of docs) {
    if (d.errors.length) throw new Error(`${relative(root, path)}: ${d.errors.map((e) => e.message).join("; ")}`);
  }
  return docs.map((d) => d.toJS({ maxAliasCount: 100 })).filter((d) => d != null);
}

async function k8sDocs(dir: string): Promise<Doc[]> {
  const all: Doc[] = [];
  for (const f of await yamlFiles(dir)) if (!f.endsWith("kustomization.yaml")) all.push(...(await load(f)));
  return all;
}

const exists = (p: string) => stat(p).then(
  () => true,
  () => false,
);

describe("every YAML file under deploy/", () => {
  it("parses", async () => {
    const files = await yamlFiles(deploy);
    expect(files.map((f) => relative(root, f))).toEqual(expect.arrayContaining(["deploy/compose.yaml", "deploy/nats/helm-values.yaml", "deploy/k8s/base/kustomization.yaml"]));
    for (const f of files) await load(f);
  });
});

describe("Kubernetes base", () => {
  it("has one Deployment per service, each with probes on its HEALTH_PORT, resources and a locked-down container", async () => {
    const docs = await k8sDocs(join(deploy, "k8s/base"));
    const deployments = docs.filter((d) => d.kind === "Deployment");
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual([...SERVICES].sort());
    for (const d of deployments) {
      const name = d.metadata.name as string;
      const pod = d.spec.template.spec;
      expect(d.spec.selector.matchLabels, name).toEqual(d.spec.template.metadata.labels);
      expect(pod.securityContext, name).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
      expect(pod.securityContext.runAsUser, name).toBeGreaterThan(0);
      expect(pod.containers, name).toHaveLength(1);
      const c = pod.containers[0];
      expect(c.args, name).toEqual([name]);
      const env = new Map<string, Doc>((c.env as Doc[]).map((e) => [e.name, e]));
      const healthPort = Number(env.get("HEALTH_PORT")?.value);
      expect(healthPort, `${name} HEALTH_PORT`).toBeGreaterThan(0);
      const ports = new Map<string, number>((c.ports as Doc[]).map((p) => [p.name, p.containerPort]));
      const portOf = (p: string | number) => (typeof p === "number" ? p : ports.get(p));
      expect(c.livenessProbe.httpGet.path, name).toBe("/healthz");
      expect(portOf(c.livenessProbe.httpGet.port), `${name} liveness port`).toBe(healthPort);
      expect(c.readinessProbe.httpGet.path, name).toBe("/readyz");
      expect(portOf(c.readinessProbe.httpGet.port), `${name} readiness port`).toBe(healthPort);
      expect(d.spec.template.metadata.annotations?.["prometheus.io/port"], name).toBe(String(healthPort));
      for (const k of ["requests", "limits"]) {
        expect(c.resources?.[k]?.cpu, `${name} ${k}.cpu`).toBeTruthy();
        expect(c.resources?.[k]?.memory, `${name} ${k}.memory`).toBeTruthy();
      }
      expect(c.securityContext, name).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
      // Its own NATS user; the password from the shared Secret under the user's key.
      expect(env.get("NATS_USER")?.value, name).toBe(name);
      expect(env.get("NATS_PASSWORD")?.valueFrom?.secretKeyRef, name).toEqual({ name: "iaas-nats-users", key: name });
      // No credential as a literal value.
      for (const [k, e] of env) {
        if (/PASSWORD|SECRET|TOKEN|USERNAME/.test(k)) expect(e.value, `${name} ${k} must come from a Secret`).toBeUndefined();
      }
    }
  });

  it("defines no Secret values, only references", async () => {
    const docs = [...(await k8sDocs(join(deploy, "k8s")))];
    expect(docs.filter((d) => d.kind === "Secret")).toEqual([]);
    const text = (await Promise.all((await yamlFiles(join(deploy, "k8s"))).map((f) => readFile(f, "utf8")))).join("\n");
    expect(text).not.toMatch(/^\s*(stringData|data):\s*\n\s+\S+:\s*\S{16,}/m);
  });

  it("autoscales the stateless services, not vcenter-proxy or remediation; a PDB covers every service", async () => {
    const docs = await k8sDocs(join(deploy, "k8s/base"));
    const hpas = docs.filter((d) => d.kind === "HorizontalPodAutoscaler");
    expect(hpas.map((h) => h.spec.scaleTargetRef.name).sort()).toEqual(["gateway", "power", "veba-bridge", "vm-lifecycle"]);
    for (const h of hpas) expect(h.spec.minReplicas, h.metadata.name).toBeGreaterThanOrEqual(2);
    const pdbs = docs.filter((d) => d.kind === "PodDisruptionBudget");
    expect(pdbs.map((p) => p.spec.selector.matchLabels["app.kubernetes.io/name"]).sort()).toEqual([...SERVICES].sort());
    const byName = new Map(docs.filter((d) => d.kind === "Deployment").map((d) => [d.metadata.name, d]));
    expect(byName.get("remediation").spec.replicas).toBe(1);
    expect(byName.get("remediation").spec.strategy.type).toBe("Recreate");
    expect(byName.get("vcenter-proxy").spec.replicas).toBeGreaterThanOrEqual(2);
  });

  it("exposes the gateway and the bridge through Services on their named http ports", async () => {
    const docs = await k8sDocs(join(deploy, "k8s/base"));
    const services = docs.filter((d) => d.kind === "Service");
    expect(services.map((s) => s.metadata.name).sort()).toEqual(["gateway", "veba-bridge"]);
    const deployments = new Map(docs.filter((d) => d.kind === "Deployment").map((d) => [d.metadata.name, d]));
    for (const s of services) {
      const c = deployments.get(s.spec.selector["app.kubernetes.io/name"]).spec.template.spec.containers[0];
      for (const p of s.spec.ports) expect((c.ports as Doc[]).some((cp) => cp.name === p.targetPort), `${s.metadata.name} ${p.targetPort}`).toBe(true);
    }
  });

  it("bootstraps JetStream as admin with three replicas", async () => {
    const job = (await k8sDocs(join(deploy, "k8s/base"))).find((d) => d.kind === "Job");
    const c = job.spec.template.spec.containers[0];
    expect(c.args).toEqual(["bootstrap"]);
    const env = new Map<string, Doc>((c.env as Doc[]).map((e) => [e.name, e]));
    expect(env.get("NATS_USER")?.value).toBe("admin");
    expect(env.get("NATS_PASSWORD")?.valueFrom?.secretKeyRef).toEqual({ name: "iaas-nats-users", key: "admin" });
    expect(env.get("NATS_REPLICAS")?.value).toBe("3");
  });
});

describe("kustomizations", () => {
  it("list only files that exist", async () => {
    for (const f of (await yamlFiles(join(deploy, "k8s"))).filter((p) => p.endsWith("kustomization.yaml"))) {
      const [k] = await load(f);
      for (const r of [...(k.resources ?? []), ...(k.components ?? [])] as string[]) {
        expect(await exists(join(dirname(f), r)), `${relative(root, f)}: ${r}`).toBe(true);
      }
      for (const g of (k.configMapGenerator ?? []) as Doc[]) for (const file of g.files ?? []) expect(await exists(join(dirname(f), String(file).split("=").pop()!))).toBe(true);
    }
  });

  // kubectl is part of the toolchain these tests run with (`kubectl kustomize` needs no cluster): a
  // missing kubectl fails here rather than passing with the real renderer never consulted.
  it("the example overlay renders with kubectl kustomize", async () => {
    const out = execFileSync("kubectl", ["kustomize", join(deploy, "k8s/overlays/example")], { encoding: "utf8" });
    const docs = parseAllDocuments(out).map((d) => d.toJS());
    expect(docs.filter((d) => d.kind === "Deployment")).toHaveLength(SERVICES.length);
    for (const d of docs) if (d.kind !== "Namespace") expect(d.metadata.namespace, `${d.kind}/${d.metadata.name}`).toBe("iaas");
    const images = docs.filter((d) => d.kind === "Deployment").map((d) => d.spec.template.spec.containers[0].image);
    expect(new Set(images)).toEqual(new Set(["registry.example.com/iaas:0.1.0"]));
  });
});

describe("NATS Helm values", () => {
  it("are what deploy/nats/gen.ts writes, and set up a three-node JetStream cluster on file storage", async () => {
    const text = await readFile(join(deploy, "nats/helm-values.yaml"), "utf8");
    expect(text).toBe(renderHelmValues());
    const [v] = await load(join(deploy, "nats/helm-values.yaml"));
    expect(v.config.cluster).toMatchObject({ enabled: true, replicas: 3 });
    expect(v.config.jetstream).toMatchObject({ enabled: true, fileStore: { enabled: true, pvc: { enabled: true } } });
    expect(v.config.merge.$include).toBe("iaas-accounts.conf");
    expect(v.configMap.merge.data["iaas-accounts.conf"]).toContain("jetstream: enabled");
    for (const u of NatsPermissions) {
      expect(v.configMap.merge.data["iaas-accounts.conf"]).toContain(`password: $${natsPasswordEnv(u.user)}`);
      expect(v.container.env[natsPasswordEnv(u.user)].valueFrom.secretKeyRef).toEqual({ name: "iaas-nats-users", key: u.user });
    }
  });
});

describe("compose.yaml (structure; no `docker compose` here)", () => {
  it("runs NATS with the generated config, a bootstrap as admin, and the six services after it", async () => {
    const [c] = await load(join(deploy, "compose.yaml"));
    const s = c.services;
    expect(Object.keys(s).sort()).toEqual(["nats", "nats-bootstrap", "vcsim", ...SERVICES].sort());

    expect(s.nats.image).toMatch(/^nats:/);
    expect(s.nats.volumes).toContain("./nats/nats-server.conf:/etc/nats/nats-server.conf:ro");
    expect(await exists(join(deploy, "nats/nats-server.conf"))).toBe(true);
    expect(s.nats.command).toEqual(expect.arrayContaining(["-c", "/etc/nats/nats-server.conf", "-sd"]));
    for (const u of NatsPermissions) expect(s.nats.environment[natsPasswordEnv(u.user)], u.user).toMatch(new RegExp(`^\\$\\{${natsPasswordEnv(u.user)}:\\?`));
    expect(s.nats.healthcheck.test.join(" ")).toContain("/healthz");

    expect(s["nats-bootstrap"].command).toEqual(["bootstrap"]);
    expect(s["nats-bootstrap"].environment.NATS_USER).toBe("admin");
    expect(s["nats-bootstrap"].depends_on.nats.condition).toBe("service_healthy");

    const dockerfile = await readFile(join(root, "Dockerfile"), "utf8");
    expect(dockerfile).toMatch(/^FROM \$\{NODE_IMAGE\} AS runtime$/m);
    expect(dockerfile).toMatch(/^USER 1000:1000$/m);
    for (const name of SERVICES) {
      const svc = s[name];
      expect(svc.command, name).toEqual([name]);
      expect(svc.build, name).toEqual({ context: "..", dockerfile: "Dockerfile" });
      expect(svc.environment.NATS_USER, name).toBe(name);
      expect(svc.environment.NATS_PASSWORD, name).toBe(`\${${natsPasswordEnv(name)}:?set ${natsPasswordEnv(name)} in deploy/.env}`);
      expect(svc.environment.NATS_URL, name).toBe("nats://nats:4222");
      expect(svc.environment.HEALTH_HOST, name).toBe("0.0.0.0");
      expect(Number(svc.environment.HEALTH_PORT), name).toBeGreaterThan(0);
      expect(svc.healthcheck.test.join(" "), name).toContain("/readyz");
      expect(svc.depends_on["nats-bootstrap"].condition, name).toBe("service_completed_successfully");
      expect(svc.read_only, name).toBe(true);
      expect(svc.cap_drop, name).toEqual(["ALL"]);
    }
    expect(s.gateway.ports).toContain("3000:3000");
    expect(s["veba-bridge"].ports).toContain("8080:8080");
    expect(s["vcenter-proxy"].environment.VCENTER_URL).toBe("${VCENTER_URL:-http://vcsim:8989/sdk}");
    expect(s.vcsim.profiles).toEqual(["vcsim"]);
    expect(s.vcsim.build.dockerfile).toBe("deploy/vcsim/Dockerfile");
    expect(await exists(join(deploy, "vcsim/Dockerfile"))).toBe(true);
  });

  it("names in deploy/.env.example every variable compose requires", async () => {
    const compose = await readFile(join(deploy, "compose.yaml"), "utf8");
    const example = await readFile(join(deploy, ".env.example"), "utf8");
    const required = new Set([...compose.matchAll(/\$\{([A-Z_]+):\?/g)].map((m) => m[1]!));
    for (const v of required) expect(example, v).toMatch(new RegExp(`^${v}=$`, "m"));
  });
});
