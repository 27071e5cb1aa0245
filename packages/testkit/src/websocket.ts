import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";

/**
 * The server side of RFC 6455, as much as the Slack stand-in needs: the opening handshake, text
 * frames both ways (client frames masked, fragmented ones joined), ping answered with pong, and
 * the closing handshake. No extensions (permessage-deflate is not accepted, so the client sends
 * plain frames). Written here rather than taken from the `ws` package so the one test stand-in
 * adds no dependency; the client on the other end is undici's WebSocket, as Bolt uses it.
 * https://www.rfc-editor.org/rfc/rfc6455
 */
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const MAX_MESSAGE = 16 * 1024 * 1024;

const Op = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

export interface WebSocketPeer {
  /** Sends one text message (JSON is the caller's business). */
  send(text: string): void;
  /** Starts the closing handshake; the socket ends when the client answers (or at once with `hard`). */
  close(code?: number, reason?: string, hard?: boolean): void;
  readonly open: boolean;
}

export interface WebSocketHandlers {
  onMessage(text: string): void;
  onClose(): void;
}

/** Refuses an upgrade with a plain HTTP status, as a server does before the handshake. */
export function refuseUpgrade(socket: Duplex, status: number, reason: string): void {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/** Completes the opening handshake on an `upgrade` request; returns undefined (and refuses) if it is not a WebSocket one. */
export function acceptWebSocket(req: IncomingMessage, socket: Duplex, head: Buffer, handlers: (peer: WebSocketPeer) => WebSocketHandlers): WebSocketPeer | undefined {
  const key = req.headers["sec-websocket-key"];
  if (String(req.headers.upgrade).toLowerCase() !== "websocket" || typeof key !== "string" || req.headers["sec-websocket-version"] !== "13") {
    refuseUpgrade(socket, 400, "Bad Request");
    return undefined;
  }
  const accept = createHash("sha1").update(key + GUID).digest("base64");
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);

  let open = true;
  let closeSent = false;
  let buffered: Buffer = head.length > 0 ? Buffer.from(head) : Buffer.alloc(0);
  let fragments: Buffer[] = [];
  let closed = false;

  const frame = (opcode: number, payload: Buffer): Buffer => {
    const len = payload.length;
    const header = len < 126 ? Buffer.alloc(2) : len < 65_536 ? Buffer.alloc(4) : Buffer.alloc(10);
    header[0] = 0x80 | opcode;
    if (len < 126) header[1] = len;
    else if (len < 65_536) {
      header[1] = 126;
      header.writeUInt16BE(len, 2);
    } else {
      header[1] = 127;
      header.writeBigUInt64BE(BigInt(len), 2);
    }
    return Buffer.concat([header, payload]);
  };
  const write = (opcode: number, payload: Buffer) => {
    if (!socket.destroyed && socket.writable) socket.write(frame(opcode, payload));
  };
  const closePayload = (code: number, reason: string) => {
    const p = Buffer.alloc(2 + Buffer.byteLength(reason));
    p.writeUInt16BE(code, 0);
    p.write(reason, 2);
    return p;
  };

  const peer: WebSocketPeer = {
    send: (text) => {
      if (!open) throw new Error("the WebSocket is not open");
      write(Op.text, Buffer.from(text, "utf8"));
    },
    close: (code = 1000, reason = "", hard = false) => {
      open = false;
      if (hard) {
        socket.destroy();
        return;
      }
      if (!closeSent) {
        closeSent = true;
        write(Op.close, closePayload(code, reason));
      }
    },
    get open() {
      return open;
    },
  };
  const h = handlers(peer);
  const finish = () => {
    open = false;
    if (closed) return;
    closed = true;
    h.onClose();
  };

  const fail = (code: number) => {
    peer.close(code);
    socket.end();
  };

  const parse = () => {
    for (;;) {
      if (buffered.length < 2) return;
      const b0 = buffered[0]!;
      const b1 = buffered[1]!;
      const fin = (b0 & 0x80) !== 0;
      const opcode = b0 & 0x0f;
      const masked = (b1 & 0x80) !== 0;
      let len = b1 & 0x7f;
      let offset = 2;
      if (len === 126) {
        if (buffered.length < 4) return;
        len = buffered.readUInt16BE(2);
        offset = 4;
      } else if (len === 127) {
        if (buffered.length < 10) return;
        const big = buffered.readBigUInt64BE(2);
        if (big > BigInt(MAX_MESSAGE)) return fail(1009);
        len = Number(big);
        offset = 10;
      }
      // A client must mask every frame (RFC 6455 5.1).
      if (!masked) return fail(1002);
      if (buffered.length < offset + 4 + len) return;
      const mask = buffered.subarray(offset, offset + 4);
      const payload = Buffer.from(buffered.subarray(offset + 4, offset + 4 + len));
      for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ mask[i % 4]!;
      buffered = buffered.subarray(offset + 4 + len);

      switch (opcode) {
        case Op.ping:
          write(Op.pong, payload);
          break;
        case Op.pong:
          break;
        case Op.close:
          open = false;
          // Answer the client's close (echoing its code), or this was the answer to ours: either way the TCP side ends here.
          if (!closeSent) {
            closeSent = true;
            write(Op.close, payload.subarray(0, 2));
          }
          socket.end();
          return;
        case Op.text:
        case Op.binary:
        case Op.continuation: {
          fragments.push(payload);
          if (fragments.reduce((n, f) => n + f.length, 0) > MAX_MESSAGE) return fail(1009);
          if (fin) {
            const message = Buffer.concat(fragments).toString("utf8");
            fragments = [];
            if (open) h.onMessage(message);
          }
          break;
        }
        default:
          return fail(1002);
      }
    }
  };

  socket.on("data", (chunk: Buffer) => {
    buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
    parse();
  });
  socket.on("close", finish);
  socket.on("error", () => socket.destroy());
  if (buffered.length) queueMicrotask(parse);
  return peer;
}
