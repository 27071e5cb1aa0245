import { createHash, randomBytes } from "node:crypto";
import { request } from "node:http";
import type { Duplex } from "node:stream";
import { describe, expect, it } from "vitest";
import { SlackStandIn, slashCommandPayload, waitUntil } from "@iaas/testkit";

const APP_TOKEN = "xapp-fake-1";

/** apps.connections.open as the Socket Mode client calls it: the app-level token in the Authorization header. */
async function connectionsOpen(slack: SlackStandIn, token: string | undefined): Promise<{ ok: boolean; url?: string; error?: string }> {
  const res = await fetch(`${slack.apiUrl}apps.connections.open`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: "",
  });
  return (await res.json()) as { ok: boolean; url?: string; error?: string };
}

/**
 * The client side of RFC 6455, written out by hand so the stand-in's framing is checked against
 * the RFC and not against itself: masked frames out, unmasked frames in. (Bolt's own client,
 * undici's WebSocket, is what the gateway tests connect with.)
 */
class RawClient {
  readonly messages: string[] = [];
  closed = false;
  private buffered = Buffer.alloc(0);
  private constructor(private readonly socket: Duplex) {
    socket.on("data", (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      this.parse();
    });
    socket.on("close", () => {
      this.closed = true;
    });
  }

  /** Resolves with the client, or with the HTTP status the server refused the upgrade with. */
  static connect(url: string): Promise<RawClient | number> {
    const key = randomBytes(16).toString("base64");
    const u = new URL(url.replace(/^ws/, "http"));
    return new Promise((resolve, reject) => {
      const req = request({ host: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, headers: { connection: "Upgrade", upgrade: "websocket", "sec-websocket-key": key, "sec-websocket-version": "13" } });
      req.on("upgrade", (res, socket, head) => {
        const expected = createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
        if (res.headers["sec-websocket-accept"] !== expected) reject(new Error("wrong Sec-WebSocket-Accept"));
        const c = new RawClient(socket);
        if (head.length) socket.unshift(head);
        resolve(c);
      });
      req.on("response", (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.end();
    });
  }

  send(opcode: number, payload: Buffer): void {
    const mask = randomBytes(4);
    const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
    const len = payload.length;
    const header = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len]) : Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 0xff]);
    this.socket.write(Buffer.concat([header, mask, masked]));
  }

  sendText(text: string): void {
    this.send(0x1, Buffer.from(text));
  }

  private parse(): void {
    for (;;) {
      if (this.buffered.length < 2) return;
      const opcode = this.buffered[0]! & 0x0f;
      if ((this.buffered[1]! & 0x80) !== 0) throw new Error("a server frame must not be masked");
      let len = this.buffered[1]! & 0x7f;
      let offset = 2;
      if (len === 126) {
        if (this.buffered.length < 4) return;
        len = this.buffered.readUInt16BE(2);
        offset = 4;
      } else if (len === 127) {
        if (this.buffered.length < 10) return;
        len = Number(this.buffered.readBigUInt64BE(2));
        offset = 10;
      }
      if (this.buffered.length < offset + len) return;
      const payload = this.buffered.subarray(offset, offset + len);
      this.buffered = this.buffered.subarray(offset + len);
      if (opcode === 0x1) this.messages.push(payload.toString("utf8"));
      else if (opcode === 0xa) this.messages.push(`pong:${payload.toString("utf8")}`);
      else if (opcode === 0x8) this.messages.push(`close:${payload.readUInt16BE(0)}`);
    }
  }
}

const json = (m: string | undefined) => JSON.parse(m ?? "null") as Record<string, unknown>;

describe("Slack stand-in: Socket Mode", () => {
  it("apps.connections.open answers a ws:// URL only for the app-level token it was given, with Slack's error names otherwise", async () => {
    await using slack = await SlackStandIn.start({ appToken: APP_TOKEN });
    expect(await connectionsOpen(slack, undefined)).toEqual({ ok: false, error: "not_authed" });
    expect(await connectionsOpen(slack, "xoxb-fake-1")).toEqual({ ok: false, error: "not_allowed_token_type" });
    expect(await connectionsOpen(slack, "xapp-fake-2")).toEqual({ ok: false, error: "invalid_auth" });
    const ok = await connectionsOpen(slack, APP_TOKEN);
    expect(ok.ok).toBe(true);
    expect(ok.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/link\/\?ticket=[0-9a-f-]{36}&app_id=A0001$/);
    expect(slack.apiCalls("apps.connections.open")).toHaveLength(4);
    // A stand-in started without an app token has no Socket Mode side.
    await using plain = await SlackStandIn.start();
    expect(await connectionsOpen(plain, APP_TOKEN)).toEqual({ ok: false, error: "invalid_auth" });
  });

  it("connectionsOpenFailure fails apps.connections.open as an outage does (HTTP 503, or a cut connection), recorded, until cleared", async () => {
    await using slack = await SlackStandIn.start({ appToken: APP_TOKEN });
    const call = () => fetch(`${slack.apiUrl}apps.connections.open`, { method: "POST", headers: { authorization: `Bearer ${APP_TOKEN}` }, body: "" });
    slack.connectionsOpenFailure = "http_503";
    const res = await call();
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ ok: false, error: "service_unavailable" });
    slack.connectionsOpenFailure = "drop";
    await expect(call()).rejects.toThrow(/fetch failed/);
    slack.connectionsOpenFailure = undefined;
    expect((await connectionsOpen(slack, APP_TOKEN)).ok).toBe(true);
    expect(slack.apiCalls("apps.connections.open")).toHaveLength(3);
  });

  it("refuses a WebSocket without a ticket, with a made-up one, or with one already used; none of them is greeted", async () => {
    await using slack = await SlackStandIn.start({ appToken: APP_TOKEN });
    const { url } = await connectionsOpen(slack, APP_TOKEN);
    const base = url!.replace(/\?.*$/, "");
    expect(await RawClient.connect(base)).toBe(401);
    expect(await RawClient.connect(`${base}?ticket=00000000-0000-4000-8000-000000000000`)).toBe(401);
    const first = await RawClient.connect(url!);
    expect(first).toBeInstanceOf(RawClient);
    expect(await RawClient.connect(url!)).toBe(401);
    expect(slack.socketRefusals).toBe(3);
    expect(slack.socketConnects).toBe(1);
  });

  it("greets with hello, sends envelopes, records acks with their payloads, answers ping, asks to reconnect, and closes cleanly", async () => {
    await using slack = await SlackStandIn.start({ appToken: APP_TOKEN });
    expect(() => slack.sendEnvelope("slash_commands", {})).toThrow(/no Socket Mode connection is open/);
    const c = (await RawClient.connect((await connectionsOpen(slack, APP_TOKEN)).url!)) as RawClient;
    const hello = await waitUntil("hello", () => c.messages[0]);
    expect(json(hello)).toMatchObject({ type: "hello", num_connections: 1, connection_info: { app_id: "A0001" } });
    expect(slack.socketsOpen).toBe(1);

    const payload = slashCommandPayload({ text: "help", response_url: slack.responseUrl("r1") });
    const id = slack.sendEnvelope("slash_commands", payload);
    const envelope = json(await waitUntil("the envelope", () => c.messages[1]));
    expect(envelope).toEqual({ envelope_id: id, type: "slash_commands", payload, accepts_response_payload: true });
    // An ack longer than 125 bytes takes the 16-bit length form.
    const text = "x".repeat(300);
    c.sendText(JSON.stringify({ envelope_id: id, payload: { text } }));
    expect(await slack.ackOf(id)).toMatchObject({ envelope_id: id, payload: { text } });

    const click = slack.sendEnvelope("interactive", { type: "block_actions" });
    expect(json(await waitUntil("the click", () => c.messages[2]))).toMatchObject({ envelope_id: click, type: "interactive", accepts_response_payload: false });
    c.sendText(JSON.stringify({ envelope_id: click, payload: {} }));
    expect((await slack.ackOf(click)).payload).toBeUndefined();

    c.send(0x9, Buffer.from("are you there"));
    expect(await waitUntil("pong", () => c.messages.find((m) => m.startsWith("pong:")))).toBe("pong:are you there");

    slack.disconnectSockets();
    expect(json(await waitUntil("disconnect", () => c.messages[4]))).toMatchObject({ type: "disconnect", reason: "refresh_requested" });
    // The client closes; the stand-in answers the close frame and ends the connection.
    c.send(0x8, Buffer.from([0x03, 0xe8]));
    await waitUntil("the socket closed", () => c.closed);
    expect(c.messages.at(-1)).toBe("close:1000");
    await waitUntil("the connection forgotten", () => slack.socketsOpen === 0);
  });

  it("dropSockets cuts the connection without a close frame", async () => {
    await using slack = await SlackStandIn.start({ appToken: APP_TOKEN });
    const c = (await RawClient.connect((await connectionsOpen(slack, APP_TOKEN)).url!)) as RawClient;
    await waitUntil("hello", () => c.messages[0]);
    slack.dropSockets();
    await waitUntil("the socket closed", () => c.closed);
    expect(c.messages.some((m) => m.startsWith("close:"))).toBe(false);
    await waitUntil("the connection forgotten", () => slack.socketsOpen === 0);
  });
});
