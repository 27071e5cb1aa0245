/**
 * Answers read piecewise: ElementSplitter cuts the elements at one path out of a document however
 * it is chunked, and WaitForUpdatesEx with `onObjectUpdate` hands over the same ObjectUpdates as
 * the answer parsed whole, from the simulator, with its body arriving a few bytes at a time.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ElementSplitter, VimClient, type PropertyFilterSpec } from "@iaas/vsphere";
import { connect, startVcsim, type Vcsim } from "./helpers.js";

const DOC =
  `<?xml version="1.0" encoding="UTF-8"?>\n` +
  `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>` +
  `<R xmlns="urn:vim25" a='x>y'><returnval><!-- a <comment> --><version>7</version>` +
  `<filterSet><filter type="PropertyFilter">f1</filter>` +
  `<objectSet><obj type="VirtualMachine" note="a > b">vm-1</obj><kind>enter</kind><![CDATA[ <objectSet> ]]></objectSet>` +
  `<objectSet/>` +
  `<objectSet xmlns:q="urn:q"><changeSet><objectSet>nested, not cut on its own</objectSet></changeSet></objectSet>` +
  `</filterSet><objectSet>not at the path</objectSet></returnval></R></soapenv:Body></soapenv:Envelope>`;
const PATH = ["Envelope", "Body", "R", "returnval", "filterSet", "objectSet"];
const CUT = [
  `<objectSet><obj type="VirtualMachine" note="a > b">vm-1</obj><kind>enter</kind><![CDATA[ <objectSet> ]]></objectSet>`,
  `<objectSet/>`,
  `<objectSet xmlns:q="urn:q"><changeSet><objectSet>nested, not cut on its own</objectSet></changeSet></objectSet>`,
];

function split(chunks: string[]): { cut: string[]; scopes: string[]; skeleton: string } {
  const cut: string[] = [];
  const scopes: string[] = [];
  const s = new ElementSplitter(PATH, (xml, scope) => {
    cut.push(xml);
    scopes.push(scope.get("") ?? "");
  });
  for (const c of chunks) s.push(c);
  return { cut, scopes, skeleton: s.end() };
}

describe("ElementSplitter", () => {
  it("cuts the elements at the path, whatever the chunk size, and keeps the rest as a document", () => {
    const whole = split([DOC]);
    expect(whole.cut).toEqual(CUT);
    // The parent's namespace scope goes with each element.
    expect(whole.scopes).toEqual(["urn:vim25", "urn:vim25", "urn:vim25"]);
    let rest = DOC;
    for (const c of CUT) rest = rest.replace(c, "");
    expect(whole.skeleton).toBe(rest);
    for (let size = 1; size <= 40; size++) {
      const chunks = DOC.match(new RegExp(`[\\s\\S]{1,${size}}`, "g"))!;
      expect(split(chunks), `chunks of ${size}`).toEqual(whole);
    }
  });
});

let sim: Vcsim;
let plain: VimClient;
let trickle: VimClient;

beforeAll(async () => {
  sim = await startVcsim();
  plain = await connect(sim);
  // The body re-chunked into 7-byte pieces: elements and tags straddle every boundary.
  const hook: typeof fetch = async (url, init) => {
    const res = await fetch(url, init);
    const bytes = new Uint8Array(await res.arrayBuffer());
    const body = new ReadableStream<Uint8Array>({
      start(ctl) {
        for (let i = 0; i < bytes.length; i += 7) ctl.enqueue(bytes.slice(i, i + 7));
        ctl.close();
      },
    });
    return new Response(body, { status: res.status, headers: res.headers });
  };
  trickle = await connect(sim, { fetch: hook });
});

afterAll(async () => {
  await Promise.all([plain?.logout(), trickle?.logout()]);
  await sim?.stop();
});

/** The first answer of a filter over every VM and folder: the whole inventory. */
async function firstAnswer(c: VimClient, piecewise: boolean): Promise<{ set: Record<string, unknown> | undefined; updates: unknown[] }> {
  const pc = await c.propertyCollector.createPropertyCollector();
  const view = await c.viewManager.createContainerView(c.serviceContent.rootFolder, ["VirtualMachine", "Folder"], true);
  try {
    const spec: PropertyFilterSpec = {
      propSet: [
        { type: "VirtualMachine", pathSet: ["name", "parent", "runtime.powerState", "config.hardware.numCPU", "customValue"] },
        { type: "Folder", pathSet: ["name", "parent"] },
      ],
      objectSet: [{ obj: view.ref, skip: true, selectSet: [{ _type: "TraversalSpec", name: "view", type: "ContainerView", path: "view", skip: false }] }],
    };
    await pc.createFilter(spec, true);
    const updates: unknown[] = [];
    const set = await pc.waitForUpdatesEx("", 0, piecewise ? { onObjectUpdate: (u) => updates.push(u) } : {});
    if (!piecewise) {
      const fs = set?.filterSet as Array<{ objectSet: unknown[] }>;
      for (const f of fs) updates.push(...f.objectSet);
    }
    return { set, updates };
  } finally {
    await pc.destroyPropertyCollector();
    await view.destroyView();
  }
}

const byObj = (us: unknown[]) => [...us].sort((a, b) => JSON.stringify((a as { obj: unknown }).obj).localeCompare(JSON.stringify((b as { obj: unknown }).obj)));

describe("WaitForUpdatesEx read piecewise", () => {
  it("hands over the same ObjectUpdates as the whole answer, and an UpdateSet without them", async () => {
    const whole = await firstAnswer(plain, false);
    const pieces = await firstAnswer(trickle, true);
    expect(whole.updates.length).toBeGreaterThan(5);
    expect(byObj(pieces.updates)).toEqual(byObj(whole.updates));
    expect(pieces.set?.version).toBe(whole.set?.version);
    const fs = pieces.set?.filterSet as Array<Record<string, unknown>>;
    expect(fs).toHaveLength(1);
    expect(fs[0]!.objectSet).toBeUndefined();
    expect(fs[0]!.filter).toMatchObject({ type: "PropertyFilter" });
  });
});
