import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Streams } from "@iaas/contracts";
import { waitUntil } from "@iaas/testkit";
import { startHarness, type Harness } from "./harness.js";

// JetStream refuses the publish (no stream captures iaas.cmd.>): the user is told at once.
describe("when the command cannot be published", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    await h.jet.jsm.streams.delete(Streams.commands.name);
  });
  afterAll(async () => {
    await h?.close();
  });

  it("answers IAAS_UNAVAILABLE with the request id, and says nothing was done", async () => {
    const r = await h.slash("power off web-01");
    expect(r.status).toBe(200);
    const text = (r.json as { text: string }).text;
    expect(text).toMatch(/^:warning: The IaaS service cannot take commands right now; nothing was done\. Try again in a minute\. \(request `r-[a-z2-7]{24}`\)$/);
    const unavailable = await h.metrics.registry.getSingleMetric("iaas_commands_total")?.get();
    expect(unavailable?.values.find((v) => v.labels.outcome === "unavailable")).toMatchObject({ labels: { verb: "power.off", code: "IAAS_UNAVAILABLE" }, value: 1 });
  });
});

// NATS is away when a verified request arrives: the ack says so at once, within Slack's 3 s.
describe("when NATS is down", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it("acks IAAS_UNAVAILABLE and posts nothing", async () => {
    await h.nats.stop();
    try {
      const r = await h.slash("power off web-01");
      expect(r.status).toBe(200);
      expect((r.json as { text: string }).text).toMatch(/^:warning: The IaaS service cannot take commands right now; nothing was done\. Try again in a minute\. \(request `r-[a-z2-7]{24}`\)$/);
    } finally {
      await h.nats.restart();
    }
    // Once the client has reconnected, the same gateway takes commands again.
    await waitUntil("the gateway to take commands again", async () => {
      const again = await h.slash("power off web-01");
      return /^Powering off `web-01`… \(request `r-/.test((again.json as { text: string }).text);
    });
    expect(h.slack.calls.filter((c) => c.method === "response_url")).toEqual([]);
  });
});
