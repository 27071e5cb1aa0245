/**
 * Names and error texts from outside reach the notify channel escaped: a red alarm on a VM whose
 * name (or entity type) carries a Slack mention or link is posted by the bot as text, never as a
 * live `<!channel>`, `<!here>` or `<https://…|…>`. The whole chain runs: the bridge takes the
 * CloudEvent over HTTP, remediation asks vcenter-proxy for the VM (whose error text repeats the
 * name), and the gateway posts the notice to the Slack stand-in with chat.postMessage.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitUntil } from "@iaas/testkit";
import { NOTIFY_CHANNEL, startWorld, type World } from "./remediation/helpers.js";

const HOSTILE = "zz` <!channel> <https://evil.example/login|Re-authenticate> `zz";
// What Slack would act on: a special mention, a user or channel mention, a link with a label.
const LIVE = /<[!@#]|<https?:|<mailto:/i;

describe("mentions and links in event fields reach Slack escaped", () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld();
  });
  afterAll(async () => {
    await w?.close();
  });

  /** The chat.postMessage bodies to the notify channel that mention `needle`, as JSON (text and blocks). */
  const postsAbout = (needle: string) =>
    w.slack
      .apiCalls("chat.postMessage")
      .filter((c) => c.body.channel === NOTIFY_CHANNEL)
      .map((c) => JSON.stringify({ text: c.body.text, blocks: c.body.blocks }))
      .filter((s) => s.includes(needle));

  it("a VM name with <!channel> and a link, through the proxy's error text", async () => {
    const data = await w.alarm("VM CPU Usage", { type: "VirtualMachine", name: "DC0_H0_VM0" });
    data.Entity = { Name: HOSTILE, Entity: { Type: "VirtualMachine", Value: "vm-999" } };
    data.Vm = { Name: HOSTILE, Vm: { Type: "VirtualMachine", Value: "vm-999" } };
    const posted = await w.post("AlarmStatusChangedEvent", data);
    expect(posted.status).toBeLessThan(300);
    const n = await w.waitNotice("the decision about the hostile name", (x) => x.cause === posted.eventId);
    expect(n).toMatchObject({ kind: "remediation.skip", rule: "cpu", decision: "skipped", reason: "vm-not-found", alarm: "VM CPU Usage" });
    // The notice is plain text over NATS: the name as it is, for operators.
    expect(n.text).toContain("<!channel>");
    const posts = await waitUntil("the notice in Slack", () => {
      const p = postsAbout("Re-authenticate");
      return p.length > 0 ? p : undefined;
    });
    for (const p of posts) {
      expect(p).not.toMatch(LIVE);
      expect(p).toContain("&lt;!channel&gt;");
    }
  });

  it("an entity type of <!here>", async () => {
    const data = await w.alarm("VM CPU Usage", { type: "VirtualMachine", name: "DC0_H0_VM1" });
    data.Entity = { Name: "DC0_H0_VM1", Entity: { Type: "<!here>", Value: "vm-1" } };
    const posted = await w.post("AlarmStatusChangedEvent", data);
    expect(posted.status).toBeLessThan(300);
    const n = await w.waitNotice("the decision about the odd entity", (x) => x.cause === posted.eventId);
    expect(n.reason).toBe("wrong-entity");
    const posts = await waitUntil("the notice in Slack", () => {
      const p = postsAbout("here&gt;").concat(postsAbout("<!here>"));
      return p.length > 0 ? p : undefined;
    });
    for (const p of posts) expect(p).not.toMatch(LIVE);
  });
});
