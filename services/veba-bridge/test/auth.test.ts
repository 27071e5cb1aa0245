import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { fixture } from "./fixtures.js";
import { binary, purgeEvents, send, startWorld, storedEvents, type Answer, type World } from "./helpers.js";

let w: World;
let basicUrl: string;
let bearerUrl: string;
let bothUrl: string;

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;

beforeAll(async () => {
  // The main bridge of this world has no auth; the three others each have one kind.
  w = await startWorld();
  basicUrl = (await w.extraBridge({ auth: { username: "veba", password: "s3cret:with-colon" } })).url;
  bearerUrl = (await w.extraBridge({ auth: { token: "tok-123" } })).url;
  bothUrl = (await w.extraBridge({ auth: { username: "veba", password: "pw", token: "tok-456" } })).url;
});
afterAll(async () => {
  await w?.close();
});
beforeEach(async () => {
  await purgeEvents(w.jet);
});

const f = fixture("VmPoweredOffEvent.data.json");

function withAuth(authorization: string | undefined) {
  const req = binary(f);
  return { headers: { ...req.headers, ...(authorization !== undefined ? { authorization } : {}) }, body: req.body };
}

async function unauthorized(a: Answer, scheme: "Basic" | "Bearer" | "both"): Promise<void> {
  expect(a.status).toBe(401);
  expect(a.json.error).toMatchObject({ code: "IAAS_UNAUTHENTICATED", reason: "unauthorized" });
  const challenge = String(a.headers["www-authenticate"]);
  if (scheme !== "Bearer") expect(challenge).toContain("Basic");
  if (scheme !== "Basic") expect(challenge).toContain("Bearer");
  expect(await storedEvents(w.jet)).toEqual([]);
}

describe("basic auth (BRIDGE_USERNAME / BRIDGE_PASSWORD)", () => {
  it("missing, wrong password, wrong user, bearer instead, garbage: 401 and nothing stored", async () => {
    await unauthorized(await send(basicUrl, withAuth(undefined)), "Basic");
    await unauthorized(await send(basicUrl, withAuth(basic("veba", "wrong"))), "Basic");
    await unauthorized(await send(basicUrl, withAuth(basic("other", "s3cret:with-colon"))), "Basic");
    await unauthorized(await send(basicUrl, withAuth(basic("veba", "s3cret"))), "Basic");
    await unauthorized(await send(basicUrl, withAuth("Bearer s3cret:with-colon")), "Basic");
    await unauthorized(await send(basicUrl, withAuth("Basic !!!")), "Basic");
  });

  it("the right user and password (a colon in the password is fine)", async () => {
    const a = await send(basicUrl, withAuth(basic("veba", "s3cret:with-colon")));
    expect(a.status).toBe(200);
    expect(await storedEvents(w.jet)).toHaveLength(1);
  });

  it("is checked before the body: a refused sender's payload is never parsed", async () => {
    const a = await send(basicUrl, { headers: { "content-type": "text/plain" }, body: "not even json" });
    expect(a.status).toBe(401);
  });
});

describe("bearer token (BRIDGE_TOKEN)", () => {
  it("missing, wrong, basic instead: 401 and nothing stored", async () => {
    await unauthorized(await send(bearerUrl, withAuth(undefined)), "Bearer");
    await unauthorized(await send(bearerUrl, withAuth("Bearer tok-12")), "Bearer");
    await unauthorized(await send(bearerUrl, withAuth("Bearer tok-1234")), "Bearer");
    await unauthorized(await send(bearerUrl, withAuth(basic("veba", "tok-123"))), "Bearer");
  });

  it("the right token, scheme in any case", async () => {
    expect((await send(bearerUrl, withAuth("Bearer tok-123"))).status).toBe(200);
    expect((await send(bearerUrl, withAuth("bearer tok-123"))).json.duplicates).toBe(0);
    expect(await storedEvents(w.jet)).toHaveLength(2);
  });
});

describe("both configured", () => {
  it("either credential is accepted; anything else is not", async () => {
    expect((await send(bothUrl, withAuth(basic("veba", "pw")))).status).toBe(200);
    expect((await send(bothUrl, withAuth("Bearer tok-456"))).status).toBe(200);
    await purgeEvents(w.jet);
    await unauthorized(await send(bothUrl, withAuth(undefined)), "both");
    await unauthorized(await send(bothUrl, withAuth("Bearer pw")), "both");
  });
});

describe("no auth configured", () => {
  it("accepts requests with or without an Authorization header", async () => {
    expect((await send(w.url, withAuth(undefined))).status).toBe(200);
    expect((await send(w.url, withAuth("Bearer anything"))).status).toBe(200);
  });

  it("health endpoints need no credentials even where auth is on", async () => {
    expect((await send(basicUrl, { path: "/healthz", method: "GET" })).status).toBe(200);
    expect((await send(bearerUrl, { path: "/readyz", method: "GET" })).status).toBe(200);
  });
});
