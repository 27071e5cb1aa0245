import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProtocolError, TimeoutError, TransportError, VimClient, VimFault, ValidationError, isVimFault } from "@iaas/vsphere";
import { connect, rejection, startVcsim, type Vcsim } from "./helpers.js";

// One file walks through the failure modes of the wire, in order: a slow method, a dead server, and
// a server that came back with different credentials.
let sim: Vcsim | undefined;
let client: VimClient;

beforeAll(async () => {
  sim = await startVcsim({ demo: false, methodDelayMs: { CurrentTime: 3_000 } });
  client = await connect(sim, { keepAliveMs: 0 });
});

afterAll(async () => {
  client?.close();
  await sim?.stop();
});

describe("transport failures", () => {
  it("a call slower than its timeout is a TimeoutError, and the client keeps working", async () => {
    const err = await rejection(client.currentTime({ timeoutMs: 300 }));
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).method).toBe("CurrentTime");
    expect((err as TimeoutError).timeoutMs).toBe(300);
    expect((err as TimeoutError).retryable).toBe(true);
    const root = await client.searchIndex.findByInventoryPath("/DC0");
    expect(root?.type).toBe("Datacenter");
  });

  it("the client-wide timeoutMs applies to every call", async () => {
    const c = await connect(sim!, { keepAliveMs: 0, timeoutMs: 300 });
    try {
      expect(await rejection(c.currentTime())).toBeInstanceOf(TimeoutError);
    } finally {
      c.close();
    }
  });

  it("a call still queued behind the concurrency limit at its deadline times out unsent", async () => {
    const c = await connect(sim!, { keepAliveMs: 0, concurrency: 1 });
    try {
      const before = c.stats.calls;
      const slow = rejection(c.currentTime({ timeoutMs: 1_500 }));
      const queued = await rejection(c.currentTime({ timeoutMs: 300 }));
      expect(queued).toBeInstanceOf(TimeoutError);
      expect((queued as TimeoutError).message).toMatch(/queued/);
      expect(await slow).toBeInstanceOf(TimeoutError);
      expect(c.stats.calls - before).toBe(1);
    } finally {
      c.close();
    }
  });

  it("a caller's AbortSignal cancels the call", async () => {
    const ac = new AbortController();
    const p = rejection(client.currentTime({ signal: ac.signal }));
    ac.abort(new Error("caller gave up"));
    expect(((await p) as Error).message).toBe("caller gave up");
  });

  it("a stopped server is a retryable TransportError", async () => {
    await sim!.stop();
    const err = await rejection(client.searchIndex.findByInventoryPath("/DC0"));
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).retryable).toBe(true);
    expect((err as TransportError).method).toBe("FindByInventoryPath");
    expect((err as TransportError).message).toMatch(/ECONNREFUSED/);
  });

  it("a re-login refused with InvalidLogin is thrown, one attempt per call", async () => {
    const port = Number(new URL(client.url).port);
    sim = await startVcsim({ demo: false, port, password: "rotated" });
    const logins = client.stats.logins;
    // The new server does not know our session: NotAuthenticated, then Login with the old password.
    const first = await rejection(client.searchIndex.findByInventoryPath("/DC0"));
    expect(first).toBeInstanceOf(VimFault);
    expect((first as VimFault).faultType).toBe("InvalidLogin");
    expect(client.stats.logins).toBe(logins + 1);
    const second = await rejection(client.searchIndex.findByInventoryPath("/DC0"));
    expect(isVimFault(second, "InvalidLogin")).toBe(true);
    expect(client.stats.logins).toBe(logins + 2);
    expect(client.stats.relogins).toBe(0);
  });
});

describe("responses cut short", () => {
  /** A fetch that hands back only part of each real response (or the whole of it, plus a newline). */
  const cutting = (cut: (text: string) => string): typeof fetch => async (url, init) => {
    const res = await fetch(url, init);
    return new Response(cut(await res.text()), { status: res.status, headers: res.headers });
  };

  it("a response without its closing Envelope tag is a ProtocolError, not a shorter answer", async () => {
    const c = new VimClient({ url: sim!.url, username: sim!.username, password: sim!.password, keepAliveMs: 0, fetch: cutting((t) => t.slice(0, t.lastIndexOf("</"))) });
    const err = await rejection(c.connect());
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as Error).message).toMatch(/RetrieveServiceContent: the response is incomplete/);
    const mid = new VimClient({ url: sim!.url, username: sim!.username, password: sim!.password, keepAliveMs: 0, fetch: cutting((t) => t.slice(0, Math.floor(t.length / 2))) });
    expect(await rejection(mid.connect())).toBeInstanceOf(ProtocolError);
  });

  it("a whole response with trailing whitespace is fine", async () => {
    const c = new VimClient({ url: sim!.url, username: sim!.username, password: sim!.password, keepAliveMs: 0, fetch: cutting((t) => `${t}\n\n`) });
    await c.connect();
    expect(c.session).toBeDefined();
    await c.logout();
  });
});

describe("options", () => {
  it("insecure accepts a self-signed certificate over https, and without it the certificate is refused", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vsphere-tls-"));
    try {
      execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", join(dir, "k.pem"), "-out", join(dir, "c.pem")], { stdio: "ignore" });
      const fault =
        '<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>' +
        "<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>tls ok</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>";
      const server = createServer({ key: readFileSync(join(dir, "k.pem")), cert: readFileSync(join(dir, "c.pem")) }, (req, res) => {
        req.resume();
        res.writeHead(500, { "Content-Type": "text/xml" }).end(fault);
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/sdk`;
      try {
        const ok = new VimClient({ url, username: "u", password: "p", insecure: true, keepAliveMs: 0 });
        const err = await rejection(ok.connect());
        expect(err).toBeInstanceOf(VimFault);
        expect((err as VimFault).message).toMatch(/tls ok/);
        const strict = new VimClient({ url, username: "u", password: "p", keepAliveMs: 0 });
        expect(await rejection(strict.connect())).toBeInstanceOf(TransportError);
      } finally {
        server.closeAllConnections();
        server.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a URL that is not http(s) is refused", () => {
    expect(() => new VimClient({ url: "ftp://x/sdk", username: "u", password: "p" })).toThrow(ValidationError);
  });
});
