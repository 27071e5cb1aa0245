import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "@nats-io/transport-node";
import { startNatsServer, startVcsim, SlackStandIn, postSigned, slackSignature, type NatsServer, type Vcsim } from "@iaas/testkit";

describe("testkit", () => {
  let nats: NatsServer;
  let sim: Vcsim;
  beforeAll(async () => {
    [nats, sim] = await Promise.all([startNatsServer(), startVcsim()]);
  });
  afterAll(async () => {
    await Promise.all([nats?.dispose(), sim?.stop()]);
  });

  it("starts a private nats-server with JetStream on a random port", async () => {
    expect(nats.port).not.toBe(4222);
    const nc = await connect({ servers: nats.url });
    const info = nc.info;
    expect(info?.jetstream).toBe(true);
    await nc.close();
  });

  it("starts the simulator and it answers SOAP", async () => {
    const body = `<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent></soapenv:Body></soapenv:Envelope>`;
    const res = await fetch(sim.url, { method: "POST", body, headers: { "content-type": "text/xml", SOAPAction: "urn:vim25/6.5" } });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("propertyCollector");
  });

  it("records response_url posts and Web API calls", async () => {
    await using slack = await SlackStandIn.start();
    const url = slack.responseUrl("r1");
    await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ text: "hi" }) });
    await fetch(`${slack.apiUrl}chat.postMessage`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ channel: "C1", text: "yo" }) });
    expect(slack.postsTo(url).map((c) => c.body.text)).toEqual(["hi"]);
    expect(slack.apiCalls("chat.postMessage")[0]?.body).toMatchObject({ channel: "C1", text: "yo" });
  });

  it("answers usergroups.list from the groups a test sets, records the call, and can fail it", async () => {
    await using slack = await SlackStandIn.start();
    slack.usergroups = [
      { id: "S0DEVS", users: ["U1", "U2"] },
      { id: "S0GONE", users: ["U1"], disabled: true },
    ];
    const list = async (form: string) =>
      (await fetch(`${slack.apiUrl}usergroups.list`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: form })).json();
    expect(await list("include_users=true")).toMatchObject({ ok: true, usergroups: [{ id: "S0DEVS", users: ["U1", "U2"], date_delete: 0 }] });
    expect(await list("")).toMatchObject({ ok: true, usergroups: [{ id: "S0DEVS", user_count: 2 }] });
    expect(((await list("")) as { usergroups: object[] }).usergroups[0]).not.toHaveProperty("users");
    expect(await list("include_users=true&include_disabled=true")).toMatchObject({ usergroups: [{ id: "S0DEVS" }, { id: "S0GONE", date_delete: 1_700_000_100 }] });
    slack.usergroupsError = "ratelimited";
    expect(await list("include_users=true")).toEqual({ ok: false, error: "ratelimited" });
    expect(slack.apiCalls("usergroups.list")).toHaveLength(5);
    expect(slack.apiCalls("usergroups.list")[0]?.body).toEqual({ include_users: "true" });
  });

  it("signs like Slack's documented example", () => {
    // Example from https://api.slack.com/authentication/verifying-requests-from-slack
    const body =
      "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    expect(slackSignature("8f742231b10e8888abcd99yyyzzz85a5", 1531420618, body)).toBe(
      "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
    );
  });

  it("postSigned reports status and body", async () => {
    await using slack = await SlackStandIn.start();
    const r = await postSigned(`${slack.apiUrl}auth.test`, "{}", { secret: "s" });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ ok: true });
  });
});
