import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

const dir = fileURLToPath(new URL("./fixtures/veba/", import.meta.url));

/** A structured-mode CloudEvent as the fixtures hold it. */
export interface Envelope {
  specversion: string;
  id: string;
  source: string;
  type: string;
  subject?: string;
  time?: string;
  datacontenttype?: string;
  data: Record<string, unknown>;
  [extension: string]: unknown;
}

export interface Fixture {
  file: string;
  /** The event class VEBA would name: the vSphere class, or an EventEx's dotted type id. */
  eventClass: string;
  data: Record<string, unknown>;
  /** Set for `*-structured-ce.json`. */
  envelope?: Envelope;
}

/** Every sample in test/fixtures/veba (real VEBA samples; their SOURCES.md says where each comes from). */
export function loadFixtures(): Fixture[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((file) => {
      const json = JSON.parse(readFileSync(join(dir, file), "utf8")) as Record<string, unknown>;
      if (file.includes("structured-ce")) {
        const envelope = json as Envelope;
        const cls = envelope.type === "com.vmware.event.router/event" ? envelope.subject! : /^com\.vmware\.vsphere\.(.+)\.v0$/.exec(envelope.type)![1]!;
        return { file, eventClass: cls, data: envelope.data, envelope };
      }
      // `<Class>.<what>.data.json`, or `EventEx.<type id>.data.json` where the class is the type id.
      const stem = file.replace(/\.data\.json$/, "");
      const eventClass = stem.startsWith("EventEx.") ? stem.slice("EventEx.".length) : stem.split(".")[0]!;
      return { file, eventClass, data: json };
    });
}

export function fixture(file: string): Fixture {
  const f = loadFixtures().find((x) => x.file === file);
  if (!f) throw new Error(`no fixture ${file}`);
  return f;
}

/** The same JSON with every object key in camelCase (`FullFormattedMessage` -> `fullFormattedMessage`). */
export function camelize(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(camelize);
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k.charAt(0).toLowerCase() + k.slice(1), camelize(x)]));
  }
  return v;
}

/** The `ce-type` VEBA's VSphereSource sends for a class: `com.vmware.vsphere.<Class>.v0`. */
export function tanzuType(eventClass: string): string {
  return `com.vmware.vsphere.${eventClass}.v0`;
}
