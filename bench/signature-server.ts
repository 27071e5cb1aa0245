/**
 * The floor for the gateway's ack latency: a bare node:http server that does only what any Slack
 * endpoint must do before answering (read the body, check the v0 signature and the 5-minute
 * replay window) and answers 200 with an empty body. Run as its own process, like the gateway.
 * Prints `{"port":N}` once listening. https://api.slack.com/authentication/verifying-requests-from-slack
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { readBody } from "./http.js";

const secret = process.env.SLACK_SIGNING_SECRET;
if (!secret) {
  process.stderr.write("SLACK_SIGNING_SECRET is required\n");
  process.exit(1);
}

const server = createServer((req, res) => {
  void readBody(req).then((body) => {
    const ts = Number(req.headers["x-slack-request-timestamp"]);
    const sig = String(req.headers["x-slack-signature"] ?? "");
    const want = `v0=${createHmac("sha256", secret).update(`v0:${ts}:${body}`).digest("hex")}`;
    const fresh = Number.isFinite(ts) && Math.abs(Date.now() / 1000 - ts) < 300;
    const ok = fresh && sig.length === want.length && timingSafeEqual(Buffer.from(sig), Buffer.from(want));
    res.writeHead(ok ? 200 : 401).end();
  });
});
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
