/**
 * Notices are kept in IAAS_NOTICES until a gateway posts them: remediation acting while no gateway
 * runs is posted once a gateway starts; two gateway replicas share the durable and post each notice
 * once, also a notice published again outside the stream's duplicate window; a post Slack refuses
 * comes back and is posted once Slack takes it.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Consumers, noticeSubject, type Notice } from "@iaas/contracts";
import { encodeJson } from "@iaas/runtime";
import { waitUntil } from "@iaas/testkit";
import { startWorld, type World } from "./helpers.js";

const CPU = "VM CPU Usage";
// A demo inventory VM with CPU hot-add.
const HOT = "DC0_C0_RP0_VM0";

describe("durable notices", () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld({ gateway: false });
  });
  afterAll(async () => {
    await w?.close();
  });

  /** chat.postMessage calls to the notify channel that carry `text`. */
  const postsOf = (text: string) => w.slackPosts().filter((p) => p.text.includes(text)).length;

  /** Every notice in the stream taken and acked by the gateways. */
  async function drained(): Promise<void> {
    const def = Consumers.gatewayNotices;
    await waitUntil("the gateways to take and ack every notice", async () => {
      const i = await w.jet.jsm.consumers.info(def.stream, def.durable);
      return i.num_pending === 0 && i.num_ack_pending === 0;
    });
  }

  function notice(text: string): Notice {
    return { id: `rem-test-${randomBytes(8).toString("hex")}`, kind: "remediation.skip", severity: "info", text, at: new Date().toISOString() };
  }

  async function publish(n: Notice, msgId = n.id): Promise<void> {
    await w.jet.js.publish(noticeSubject(n.kind), encodeJson(n), { msgID: msgId });
  }

  it("a notice published while no gateway runs is posted once, when a gateway starts", async () => {
    const posted = await w.post("AlarmStatusChangedEvent", await w.alarm(CPU, { type: "VirtualMachine", name: HOT }));
    const n = await w.waitNotice("the action", (x) => x.cause === posted.eventId);
    expect(n.kind).toBe("remediation.action");
    await w.caughtUp();
    expect(w.slackPosts(), "nothing posted without a gateway").toEqual([]);

    await w.startGateway();
    await waitUntil("the notice in Slack", () => postsOf(n.text) > 0);
    await drained();
    expect(postsOf(n.text)).toBe(1);
  });

  it("two gateway replicas post each notice once, also one published twice outside the duplicate window", async () => {
    await w.startGateway(); // the second replica
    const notices = Array.from({ length: 12 }, (_, i) => notice(`Replica check ${i} ${randomBytes(4).toString("hex")}`));
    for (const n of notices) await publish(n);
    // The same notices again under other message ids: the stream keeps them, the posted-notices bucket stops them.
    for (const n of notices) await publish(n, `${n.id}-again`);
    await waitUntil("every notice in Slack", () => notices.every((n) => postsOf(n.text) > 0));
    await drained();
    expect(notices.map((n) => postsOf(n.text))).toEqual(notices.map(() => 1));
  });

  it("a notice Slack refuses comes back and is posted once Slack takes it", async () => {
    w.slack.postMessageFailures = 2;
    const n = notice(`Slack outage check ${randomBytes(4).toString("hex")}`);
    await publish(n);
    // Two refused posts (recorded by the stand-in too), then the one that is taken.
    await waitUntil("the notice tried three times", () => postsOf(n.text) >= 3, 30_000);
    await drained();
    expect(w.slack.postMessageFailures).toBe(0);
    expect(postsOf(n.text)).toBe(3);
  });
});
