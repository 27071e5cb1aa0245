import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSystem, type System } from "./harness.js";
import { idOf, postsMatching, textOf } from "./helpers.js";

/**
 * A vCenter slower than Slack's 3-second ack: the simulator delays every property read, so `list`
 * cannot be answered in the ack. The ack says it is looking (with the request id) and the answer
 * follows on the response_url.
 */
describe("a query slower than the ack budget", () => {
  let sys: System;
  beforeAll(async () => {
    sys = await startSystem({ vcsim: { methodDelayMs: { RetrievePropertiesEx: 2_500 } } });
  });
  afterAll(async () => {
    await sys?.stop();
  });

  it("acks 'looking' at once, then posts the list to the response_url", async () => {
    const r = await sys.slash("list all DC0_H0_*", { user_id: "UADMIN1" });
    expect(r.status).toBe(200);
    expect(textOf(r.json)).toMatch(/^:mag: Looking that up… \(request `r-[a-z2-7]{24}`\)$/);
    idOf(r.json);
    const [answer] = await postsMatching(sys, r.responseUrl, (t) => t.startsWith("2 VMs matching"));
    expect(answer!.body).toMatchObject({ response_type: "ephemeral", replace_original: false });
    expect(JSON.stringify(answer!.body.blocks)).toContain("DC0_H0_VM0");
  });
});
