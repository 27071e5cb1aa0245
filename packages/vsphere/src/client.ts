import { SpanKind, SpanStatusCode, context, trace } from "@opentelemetry/api";
import { decodeNode, encodeValue } from "./codec.js";
import { TimeoutError, ValidationError, VimFault, isVimFault } from "./errors.js";
import { asString, parseServiceContent, parseUserSession } from "./parse.js";
import { Semaphore } from "./queue.js";
import { SoapTransport, startDeadline, type RequestOptions } from "./transport.js";
import { escapeAttr, escapeText, type NsScope, type XNode } from "./xml.js";
import { moRef, type MoRef, type ServiceContent, type UserSession } from "./types.js";

/** pino-compatible: any subset of the level methods, called as `(fields, message)`. */
export interface Logger {
  debug?(obj: object, msg?: string): void;
  info?(obj: object, msg?: string): void;
  warn?(obj: object, msg?: string): void;
  error?(obj: object, msg?: string): void;
}

export interface VimClientOptions {
  /** SOAP endpoint, e.g. `https://vcenter.example.com/sdk`. */
  url: string;
  username: string;
  password: string;
  /**
   * Accept a self-signed certificate (https). Applies to the client's own node:https connections;
   * with `fetch` or `dispatcher` given, those decide.
   */
  insecure?: boolean;
  /** Send requests through fetch with this `dispatcher` (an undici Agent/Dispatcher) instead of node:http. */
  dispatcher?: unknown;
  /** Send requests through this fetch implementation instead of node:http (tests, proxies). */
  fetch?: typeof fetch;
  /** Timeout of every SOAP request; default 60 000 ms. */
  timeoutMs?: number;
  /** Send CurrentTime this often so vCenter does not expire the idle session; default 300 000 ms, 0 = off. */
  keepAliveMs?: number;
  /** Requests in flight at once; the rest wait in FIFO order. Default 16. */
  concurrency?: number;
  /** SOAPAction version; default: the server's `about.apiVersion`. */
  apiVersion?: string;
  userAgent?: string;
  logger?: Logger;
}

export interface ClientStats {
  /** Login requests sent: the first login and every re-login attempt, successful or not. */
  logins: number;
  /** Re-logins that succeeded after vCenter forgot the session. */
  relogins: number;
  /** SOAP requests sent (Login and keep-alives included). */
  calls: number;
  /** VimFaults received: SOAP faults, task errors seen by Task.wait, NotAuthenticated in a missingSet. */
  faults: number;
}

export type CallOptions = RequestOptions;

/** One method argument: element name, value, schema type (`X[]` for a repeated element). */
export type Arg = readonly [name: string, value: unknown, type: string];

export interface InvokeOptions extends CallOptions {
  /** Schema type of `<returnval>`; `X[]` when the method returns an array. Omit for void methods. */
  returns?: string;
  /** Inspects the decoded result; may throw (a NotAuthenticated VimFault thrown here triggers a re-login). */
  check?: (result: unknown) => void;
  /** Do not log in again on NotAuthenticated (Login itself, Logout). */
  noRelogin?: boolean;
  /**
   * Elements at `path` below `<returnval>` (e.g. `["filterSet", "objectSet"]`) decoded as `type`
   * and handed to `fn` one by one while the answer arrives, instead of in the result (which then
   * lacks them): memory is a batch of them, not the whole answer.
   */
  each?: { path: readonly string[]; type: string; fn: (value: unknown) => void };
}

const SERVICE_INSTANCE = moRef("ServiceInstance", "ServiceInstance");

/** The managers ServiceContent may name (a plain ESXi host lacks some of them). */
export type ServiceManager = "viewManager" | "sessionManager" | "searchIndex" | "eventManager" | "taskManager" | "perfManager" | "alarmManager" | "customFieldsManager";

/** A queued call found a re-login under way when its turn came: it was not sent. */
const RELOGIN_PENDING = Symbol("relogin pending");

/** Waits for `p`, or rejects with the signal's reason when it aborts first (a deadline). */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/**
 * A vim25 SOAP client with one session, shaped like govmomi's `vim25.Client` + `session.Manager`:
 * `connect()` logs in; a call that meets NotAuthenticated logs in again once (concurrent callers
 * share that login) and is retried once; a keep-alive stops vCenter expiring an idle session.
 * Transport and session only: the managed-object wrappers sit on top of it and the service-instance
 * facade (`VimClient`) hands them out, so nothing here knows them.
 */
export class Vim25Client {
  readonly stats: ClientStats = { logins: 0, relogins: 0, calls: 0, faults: 0 };
  private readonly transport: SoapTransport;
  private readonly limiter: Semaphore;
  private readonly log: Logger;
  private content: ServiceContent | undefined;
  private userSession: UserSession | undefined;
  /** Bumped on every successful re-login: calls started under an older generation need no new login. */
  private generation = 0;
  private relogin_: Promise<void> | undefined;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly renewalListeners = new Set<() => void>();

  constructor(private readonly opts: VimClientOptions) {
    let url: URL;
    try {
      url = new URL(opts.url);
    } catch {
      throw new ValidationError("url", `not a URL: ${opts.url}`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new ValidationError("url", "must be http(s)");
    this.transport = new SoapTransport({
      url: opts.url,
      apiVersion: opts.apiVersion ?? "6.5",
      timeoutMs: opts.timeoutMs ?? 60_000,
      fetch: opts.fetch,
      dispatcher: opts.dispatcher,
      insecure: opts.insecure === true,
      maxSockets: opts.concurrency ?? 16,
      userAgent: opts.userAgent ?? "iaas-vsphere",
    });
    this.limiter = new Semaphore(opts.concurrency ?? 16);
    this.log = opts.logger ?? {};
  }

  /** Creates a client (of the class it is called on), reads the ServiceContent and logs in. */
  static async connect<C extends Vim25Client>(this: new (opts: VimClientOptions) => C, opts: VimClientOptions): Promise<C> {
    const c = new this(opts);
    await c.connect();
    return c;
  }

  /** RetrieveServiceContent, then Login (once: an InvalidLogin is thrown, not retried). */
  async connect(): Promise<this> {
    const raw = await this.invoke("RetrieveServiceContent", SERVICE_INSTANCE, [], {
      returns: "ServiceContent",
      noRelogin: true,
    });
    this.content = parseServiceContent(raw);
    if (this.opts.apiVersion === undefined) this.transport.apiVersion = this.content.about.apiVersion;
    await this.login();
    this.startKeepAlive();
    return this;
  }

  get serviceContent(): ServiceContent {
    if (this.content === undefined) throw new Error("VimClient: not connected (call connect() first)");
    return this.content;
  }

  /** A manager's moref from the ServiceContent; throws when the server has none (not a vCenter). */
  serviceRef(name: ServiceManager): MoRef {
    const ref = this.serviceContent[name];
    if (ref === undefined) throw new Error(`ServiceContent has no ${name} (not a vCenter?)`);
    return ref;
  }

  /** The session from the latest Login. */
  get session(): UserSession | undefined {
    return this.userSession;
  }

  get url(): string {
    return this.transport.url;
  }

  /** The default per-request timeout. */
  get timeoutMs(): number {
    return this.transport.defaultTimeoutMs;
  }

  // ------------------------------------------------------------------ invoking

  /**
   * Calls a vim25 method on `thisRef`. NotAuthenticated → one re-login (shared with concurrent
   * callers) and one retry. Faults surface as VimFault, network failures as TransportError, a
   * missed deadline as TimeoutError.
   */
  async invoke(method: string, thisRef: MoRef, args: readonly Arg[] = [], opts: InvokeOptions = {}): Promise<unknown> {
    const gen = this.generation;
    try {
      return await this.invokeOnce(method, thisRef, args, opts);
    } catch (err) {
      if (opts.noRelogin || this.closed || this.userSession === undefined || !isVimFault(err, "NotAuthenticated")) throw err;
      await this.relogin(gen, method);
      return await this.invokeOnce(method, thisRef, args, opts);
    }
  }

  /**
   * One call in a client span named after the method, when a span is active (a request being
   * handled): the server's address and the object's type, never arguments, bodies or the session.
   * A call outside any request (the keep-alive, an inventory feed) makes no span.
   */
  private async invokeOnce(method: string, thisRef: MoRef, args: readonly Arg[], opts: InvokeOptions): Promise<unknown> {
    if (!trace.getSpan(context.active())?.isRecording()) return this.invokeUntraced(method, thisRef, args, opts);
    const url = new URL(this.transport.url);
    const span = trace.getTracer("@iaas/vsphere").startSpan(method, {
      kind: SpanKind.CLIENT,
      attributes: {
        "rpc.system": "soap",
        "rpc.service": "vim25",
        "rpc.method": method,
        "server.address": url.hostname.replace(/^\[|\]$/g, ""),
        "server.port": Number(url.port) || (url.protocol === "https:" ? 443 : 80),
        "vsphere.object.type": thisRef.type,
      },
    });
    try {
      return await this.invokeUntraced(method, thisRef, args, opts);
    } catch (err) {
      const e = err as { faultType?: unknown; name?: unknown };
      const type = typeof e?.faultType === "string" ? e.faultType : typeof e?.name === "string" ? e.name : "Error";
      span.setAttribute("error.type", type);
      span.setStatus({ code: SpanStatusCode.ERROR, message: type });
      throw err;
    } finally {
      span.end();
    }
  }

  private async invokeUntraced(method: string, thisRef: MoRef, args: readonly Arg[], opts: InvokeOptions): Promise<unknown> {
    const encoded = args.map(([name, value, type]) => {
      try {
        return encodeValue(name, value, type);
      } catch (err) {
        // A spec the schema refuses (unknown field, "2" for an int, a control character) is the caller's input.
        if (err instanceof TypeError) throw new ValidationError(`${method}.${name}`, err.message);
        throw err;
      }
    });
    const body =
      `<${method} xmlns="urn:vim25"><_this type="${escapeAttr(thisRef.type)}">${escapeText(thisRef.value)}</_this>` +
      encoded.join("") +
      `</${method}>`;
    let result: unknown;
    const each = opts.each;
    const stream = each && { path: each.path, onElement: (node: XNode, scope: NsScope) => each.fn(decodeNode(node, scope, each.type, method)) };
    const deadline = startDeadline(opts.timeoutMs ?? this.transport.defaultTimeoutMs);
    // Made only when the call has to wait (a re-login, a full queue): most never do.
    let waitSignal: AbortSignal | undefined;
    const queueSignal = (): AbortSignal => (waitSignal ??= opts.signal ? AbortSignal.any([deadline.signal, opts.signal]) : deadline.signal);
    try {
      // While a re-login is under way, a call must not go out without a session (it would only
      // fail NotAuthenticated and come back): it waits for the login outside the queue, then
      // queues again. The Login itself (noRelogin) goes to the head of the queue.
      let res;
      for (;;) {
        if (this.relogin_ && !opts.noRelogin) {
          await raceAbort(this.relogin_, queueSignal()).catch((err: unknown) => {
            if (deadline.isReason(err)) {
              throw new TimeoutError(`${method}: still waiting for the re-login after ${deadline.timeoutMs} ms`, { timeoutMs: deadline.timeoutMs, method });
            }
            throw err;
          });
        }
        res = await this.limiter
          .run(
            async () => {
              if (this.relogin_ && !opts.noRelogin) return RELOGIN_PENDING;
              this.stats.calls++;
              return this.transport.send(method, body, { deadline, signal: opts.signal, stream });
            },
            queueSignal,
            opts.noRelogin === true,
          )
        .catch((err: unknown) => {
          // Aborted while still queued for a slot: nothing was sent.
          if (deadline.isReason(err)) {
            throw new TimeoutError(`${method}: still queued after ${deadline.timeoutMs} ms (concurrency limit)`, {
              timeoutMs: deadline.timeoutMs,
              method,
            });
          }
          throw err;
        });
        if (res !== RELOGIN_PENDING) break;
      }
      if (opts.returns !== undefined) {
        const many = opts.returns.endsWith("[]");
        const type = many ? opts.returns.slice(0, -2) : opts.returns;
        const vals = res.returnvals.map((n) => decodeNode(n, res.scope, type, method));
        result = many ? vals : vals[0];
      }
      opts.check?.(result);
    } catch (err) {
      if (err instanceof VimFault) this.stats.faults++;
      throw err;
    } finally {
      deadline.clear();
    }
    return result;
  }

  private async relogin(seenGeneration: number, method: string): Promise<void> {
    // Someone logged in again after this call was sent: its failure belongs to the old session.
    if (this.generation !== seenGeneration) return;
    this.relogin_ ??= (async () => {
      try {
        this.log.info?.({ method }, "vSphere session lost (NotAuthenticated); logging in again");
        // A Login on a cookie that is still logged in is refused (InvalidLogin), so start clean.
        this.transport.cookie = undefined;
        await this.login();
        this.generation++;
        this.stats.relogins++;
        for (const fn of this.renewalListeners) {
          try {
            fn();
          } catch {
            // a listener's failure is its own
          }
        }
      } finally {
        this.relogin_ = undefined;
      }
    })();
    await this.relogin_;
  }

  private async login(): Promise<void> {
    this.stats.logins++;
    this.userSession = await this.loginAs(this.opts.username, this.opts.password);
  }

  /**
   * SessionManager.Login on this connection, the one place it is written. It does not become the
   * client's session (connect() and the re-login keep that), and a NotAuthenticated is not retried.
   */
  async loginAs(userName: string, password: string, opts: CallOptions = {}): Promise<UserSession> {
    const raw = await this.invoke(
      "Login",
      this.serviceRef("sessionManager"),
      [
        ["userName", userName, "string"],
        ["password", password, "string"],
      ],
      { ...opts, returns: "UserSession", noRelogin: true },
    );
    return parseUserSession(raw);
  }

  /**
   * Runs `fn`, which creates and uses session-scoped objects (ContainerViews, collectors). If the
   * session was renewed while it ran, those objects died with the old session (ManagedObjectNotFound),
   * so `fn` runs once more from the start.
   */
  async withSessionObjects<T>(fn: () => Promise<T>): Promise<T> {
    const gen = this.generation;
    try {
      return await fn();
    } catch (err) {
      if (this.generation !== gen && isVimFault(err, "ManagedObjectNotFound")) return await fn();
      throw err;
    }
  }

  /** Calls `fn` after each re-login (session objects of the old session are gone); returns an unsubscribe. */
  onSessionRenewed(fn: () => void): () => void {
    this.renewalListeners.add(fn);
    return () => this.renewalListeners.delete(fn);
  }

  /** After close() or logout(): calls no longer log in again. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** The session generation; changes after each successful re-login. */
  get sessionGeneration(): number {
    return this.generation;
  }

  // ------------------------------------------------------------------ session lifecycle

  private startKeepAlive(): void {
    const every = this.opts.keepAliveMs ?? 300_000;
    if (every <= 0 || this.keepAliveTimer !== undefined) return;
    this.keepAliveTimer = setInterval(() => {
      this.currentTime().catch((err: unknown) => this.log.warn?.({ err }, "vSphere keep-alive failed"));
    }, every);
    this.keepAliveTimer.unref();
  }

  /** ServiceInstance.CurrentTime: the server clock; also what the keep-alive sends. */
  async currentTime(opts: CallOptions = {}): Promise<string> {
    const t = await this.invoke("CurrentTime", SERVICE_INSTANCE, [], { ...opts, returns: "dateTime" });
    return asString(t, "CurrentTime");
  }

  /** Stops the keep-alive and ends the session. Later calls fail with NotAuthenticated (no re-login). */
  async logout(): Promise<void> {
    this.close();
    const sm = this.content?.sessionManager;
    if (sm === undefined || this.userSession === undefined) return;
    try {
      await this.invoke("Logout", sm, [], { noRelogin: true });
    } catch (err) {
      if (!isVimFault(err, "NotAuthenticated")) throw err;
    } finally {
      this.userSession = undefined;
      this.transport.close();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.logout();
  }

  /** Stops the keep-alive and disables re-login without logging out (the session stays until it expires). */
  close(): void {
    this.closed = true;
    if (this.keepAliveTimer !== undefined) clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = undefined;
  }
}
