import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listVmSummaries } from "@iaas/vsphere";
import { slashCommandPayload, waitUntil } from "@iaas/testkit";
import { startSystem, type System, DEMO_VMS } from "./harness.js";
import { buttonsOf, clickPayload, finalPost, idOf, inventory, postsMatching, textOf } from "./helpers.js";

/** An obviously fake app-level token. */
const APP_TOKEN = "xapp-fake-1";

/**
 * The whole system with the gateway on Socket Mode: Slack's side (the stand-in) hands the gateway
 * a WebSocket through apps.connections.open, delivers `/iaas` as `slash_commands` envelopes and
 * clicks as `interactive` ones; the gateway acks over the socket and the results still go to the
 * response_url over HTTPS, as Slack does it. The gateway has no HTTP port.
 */
describe("Socket Mode, end to end", () => {
  let sys: System;
  beforeAll(async () => {
    sys = await startSystem({ gatewayEnv: { SLACK_APP_TOKEN: APP_TOKEN }, slackOptions: { appToken: APP_TOKEN } });
    // Unowned VMs are admin-only: the demo VMs become the requester's (U0001).
    await sys.adopt(DEMO_VMS, "U0001");
  });
  afterAll(async () => {
    await sys?.stop();
  });

  const stateOf = async (name: string) => (await listVmSummaries(sys.observer)).find((v) => v.name === name)?.powerState;

  /** `/iaas <text>` from U0001 as an envelope; the ack's payload and the envelope's response_url. */
  const slash = async (text: string) => {
    const responseUrl = sys.slack.responseUrl();
    const ack = await sys.slack.ackOf(sys.slack.sendEnvelope("slash_commands", slashCommandPayload({ text, response_url: responseUrl })));
    return { json: ack.payload ?? {}, responseUrl };
  };

  it("connects over Socket Mode only", () => {
    expect(sys.gatewayUrl).toBe("");
    expect(sys.slack.socketsOpen).toBe(1);
  });

  it("power off: acked over the socket with the request id, the VM is off in vCenter, the result on the response_url", async () => {
    expect(await stateOf("DC0_H0_VM0")).toBe("poweredOn");
    const r = await slash("power off DC0_H0_VM0");
    expect(textOf(r.json)).toMatch(/^Powering off `DC0_H0_VM0`… \(request `r-[a-z2-7]{24}`\)$/);
    const id = idOf(r.json);
    const result = await finalPost(sys, r.responseUrl);
    expect(result).toContain("`DC0_H0_VM0` is powered off");
    expect(result).toContain(id);
    expect(await stateOf("DC0_H0_VM0")).toBe("poweredOff");
  });

  it("delete: the prompt in the ack, Confirm as an `interactive` envelope (a bare ack), the VM deleted", async () => {
    const created = await slash("create sock-01");
    expect(await finalPost(sys, created.responseUrl)).toContain(":white_check_mark: Created `sock-01`");

    const r = await slash("delete sock-01");
    const id = idOf(r.json);
    expect(buttonsOf(r.json).map((b) => b.actionId)).toEqual(["iaas.confirm", "iaas.cancel"]);

    const responseUrl = sys.slack.responseUrl();
    const envelopeId = sys.slack.sendEnvelope("interactive", clickPayload({ userId: "U0001", action: "confirm", value: id }, responseUrl));
    expect((await sys.slack.ackOf(envelopeId)).payload).toBeUndefined();
    const [replaced] = await postsMatching(sys, responseUrl, (t) => t.startsWith("Deleting"));
    expect(replaced!.body).toMatchObject({ replace_original: true });
    expect(await finalPost(sys, responseUrl)).toContain(":white_check_mark: Deleted `sock-01`.");
    expect((await inventory(sys)).has("sock-01")).toBe(false);
  });

  it("a command acked just before Slack recycles the connection still gets its result; after the reconnect commands run again", async () => {
    const on = await slash("power on DC0_H0_VM0");
    expect(textOf(on.json)).toMatch(/^Powering on `DC0_H0_VM0`…/);
    sys.slack.disconnectSockets();
    expect(await finalPost(sys, on.responseUrl)).toContain("`DC0_H0_VM0` is powered on");

    await waitUntil("the gateway's new connection", () => sys.slack.socketConnects === 2 && sys.slack.socketsOpen === 1, 30_000);
    const off = await slash("power off DC0_H0_VM0");
    expect(await finalPost(sys, off.responseUrl)).toContain("`DC0_H0_VM0` is powered off");
    expect(await stateOf("DC0_H0_VM0")).toBe("poweredOff");
  });
});
