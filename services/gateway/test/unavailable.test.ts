import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Streams } from "@iaas/contracts";
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
