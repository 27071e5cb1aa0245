import type { CallOptions, Vim25Client } from "../client.js";
import { asBoolean, parseUserSession } from "../parse.js";
import { defaultCollector } from "../property.js";
import type { MoRef, UserSession } from "../types.js";

/**
 * The SessionManager managed object. VimClient.connect() already logs in and renews the session;
 * these are the raw operations (TerminateSession of another session, SessionIsActive checks).
 */
export class SessionManager {
  constructor(
    readonly client: Vim25Client,
    readonly ref: MoRef,
  ) {}

  /** Login on this client's connection. Normally done by VimClient.connect(); no re-login applies. */
  login(userName: string, password: string, opts: CallOptions = {}): Promise<UserSession> {
    return this.client.loginAs(userName, password, opts);
  }

  /** Logout of the current session (VimClient.logout() also stops the keep-alive and re-login). */
  async logout(opts: CallOptions = {}): Promise<void> {
    await this.client.invoke("Logout", this.ref, [], { ...opts, noRelogin: true });
  }

  /** SessionIsActive: whether the session `sessionID` of `userName` is still alive. */
  async sessionIsActive(sessionID: string, userName: string, opts: CallOptions = {}): Promise<boolean> {
    const r = await this.client.invoke(
      "SessionIsActive",
      this.ref,
      [
        ["sessionID", sessionID, "string"],
        ["userName", userName, "string"],
      ],
      { ...opts, returns: "boolean" },
    );
    return asBoolean(r, "SessionIsActive");
  }

  /** TerminateSession of other sessions (terminating your own is an InvalidArgument fault). */
  async terminateSession(sessionIds: readonly string[], opts: CallOptions = {}): Promise<void> {
    await this.client.invoke("TerminateSession", this.ref, [["sessionId", sessionIds, "string[]"]], opts);
  }

  /** The `currentSession` property: this connection's session, or undefined if not logged in. */
  async currentSession(opts: CallOptions = {}): Promise<UserSession | undefined> {
    const [r] = await defaultCollector(this.client).retrieve([this.ref], ["currentSession"], opts);
    const v = r?.props.currentSession;
    return v === undefined ? undefined : parseUserSession(v);
  }
}
