import { createHash, randomUUID } from "node:crypto";
import { IaasError, ProxyEndpoints, Subjects, formatDuration, noticeSubject, type LeaseAudit, type Notice, type VmSummary } from "@iaas/contracts";
import type { Policy } from "@iaas/policy";
import { encodeJson, inVcenter, requestJson, type JetStreamClient, type KV, type Logger, type NatsConnection } from "@iaas/runtime";
import { DeletesInFlight, StepClaims, type DeleteInFlight } from "./claims.js";
import type { KeeperMetrics } from "./metrics.js";

export interface KeeperDeps {
  nc: NatsConnection;
  js: JetStreamClient;
  /** The `iaas_leases` bucket. */
  kv: KV;
  policy: Policy;
  log: Logger;
  /** Steps done and failed, rounds, and leases ended but not acted on. */
  metrics?: KeeperMetrics;
  config: {
    /** Time between two rounds over the leased VMs. */
    scanMs: number;
    /** A claimed step older than this was left by a keeper that died; another takes it over. */
    claimStaleMs: number;
    /** Deadline of one proxy call (a power-off or delete task included). */
    proxyTimeoutMs: number;
    /** Every vCenter whose leases it keeps (VCENTERS, `default` first); the default one when unset. */
    vcenters?: readonly string[] | undefined;
  };
  now?: () => number;
}

/** VMs per vm-leases page. */
const PAGE = 200;

/** A step of one lease end, as its key's last part: `remind-<ms before>`, `expire`, `grace`. */
type Step = { kind: "remind"; beforeMs: number } | { kind: "expire" } | { kind: "grace"; graceStart: number };

const stepName = (s: Step) => (s.kind === "remind" ? `remind-${s.beforeMs}` : s.kind);
/** `<moref>.<expiry ms>.<step>`: the key of one step in `iaas_leases` (also the audit and notice ids). */
export const stepKey = (moref: string, expiresMs: number, step: string) => `${safe(moref)}.${expiresMs}.${step}`;
const safe = (s: string) => s.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 60);

/**
 * Which vCenter a VM is in, as the keeper passes it along: the id, the `vcenter` of its proxy
 * requests, how its steps are keyed (the default vCenter's by moref, as before there were several;
 * another's by `<id>/<moref>`: two vCenters may use the same morefs), and what its notices add.
 */
interface Where {
  id: string;
  req: { vcenter?: string };
  key(moref: string): string;
  /** ` in vCenter \`lab\``, and ` vc=lab` for a button's command; empty for the default one. */
  words: string;
  vc: string;
}
function whereOf(id: string): Where {
  const other = id !== "default";
  return { id, req: inVcenter(other ? id : undefined), key: (moref) => (other ? `${id}/${moref}` : moref), words: other ? ` in vCenter \`${id}\`` : "", vc: other ? ` vc=${id}` : "" };
}
const utc = (ms: number) => `${new Date(ms).toISOString().slice(0, 16).replace("T", " ")} UTC`;

/** What a notice and an audit record say of a VM: as listed, or as a delete-in-flight marker kept it. */
type VmFacts = Pick<VmSummary, "name" | "path" | "moref" | "owner" | "team">;

/**
 * The lease keeper: every `scanMs`, reads the leased VMs from vcenter-proxy (the lease is the VM's
 * custom attribute, so vCenter is the truth and a lease changed in the vSphere Client counts) and
 * does what is due for each: a reminder `remindBefore` the end, the power-off at the end, the
 * delete (or keep) `grace` after it. Each step is claimed in `iaas_leases` before it is done, so
 * across replicas and restarts it happens once; a step missed while no keeper ran is done on the
 * next round. Each VM is read again from vCenter before a step, and the step decided on that read.
 */
export class LeaseKeeper {
  private readonly claims: StepClaims;
  private readonly inFlight: DeletesInFlight;
  private readonly now: () => number;
  private readonly by = `keeper-${randomUUID().slice(0, 8)}`;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly d: KeeperDeps) {
    this.now = d.now ?? Date.now;
    this.claims = new StepClaims(d.kv, { by: this.by, staleMs: d.config.claimStaleMs, now: this.now, log: d.log });
    this.inFlight = new DeletesInFlight(d.kv, d.log);
  }

  start(): void {
    const tick = () => {
      if (this.stopped) return;
      this.running = this.round()
        .catch((err: unknown) => this.d.log.warn({ err }, "lease round failed; the next round tries again"))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, this.d.config.scanMs);
        });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /**
   * One pass over every leased VM of every vCenter, page by page, after finishing the deletes a
   * keeper left in flight. A vCenter that cannot be read does not hold up the others; the round
   * then counts as failed, and the next one tries again.
   */
  async round(): Promise<void> {
    if (!this.d.policy.leases.enabled) return;
    await this.finishDeletes();
    let overdue = 0;
    let failed: unknown;
    for (const id of this.d.config.vcenters?.length ? this.d.config.vcenters : ["default"]) {
      if (this.stopped) return;
      try {
        overdue += await this.roundIn(whereOf(id));
      } catch (err) {
        failed ??= err;
        if ((this.d.config.vcenters?.length ?? 0) > 1) this.d.log.warn({ err, vcenter: id }, "could not read a vCenter's leases; the next round tries again");
      }
    }
    if (failed !== undefined) {
      this.d.metrics?.rounds.inc({ outcome: "failed" });
      throw failed;
    }
    this.d.metrics?.rounds.inc({ outcome: "ok" });
    this.d.metrics?.overdue.set(overdue);
  }

  /** The leased VMs of one vCenter; answers how many are overdue. */
  private async roundIn(at: Where): Promise<number> {
    let after: string | undefined;
    let overdue = 0;
    do {
      const page = await requestJson(this.d.nc, ProxyEndpoints.vmLeases, { ...at.req, limit: PAGE, ...(after ? { after } : {}) }, { timeoutMs: this.d.config.proxyTimeoutMs });
      for (const vm of page.vms) {
        if (this.stopped) return overdue;
        await this.consider(vm, at).catch((err: unknown) => this.d.log.warn({ err, vm: vm.name, moref: vm.moref, vcenter: at.id }, "could not handle a VM's lease; the next round tries again"));
        if (await this.isOverdue(vm, at)) overdue += 1;
      }
      after = page.next;
    } while (after && !this.stopped);
    return overdue;
  }

  /** A listed VM whose lease has ended and whose power-off step is not done (after this round's try). */
  private async isOverdue(vm: VmSummary, at: Where): Promise<boolean> {
    if (!vm.leaseExpires || vm.leaseInvalid !== undefined) return false;
    const expires = Date.parse(vm.leaseExpires);
    if (this.now() < expires) return false;
    const rec = await this.claims.read(stepKey(at.key(vm.moref), expires, "expire")).catch(() => undefined);
    return rec?.record.state !== "done";
  }

  /** What is due for one listed VM; the VM is read again from vCenter before anything is done. */
  private async consider(listed: VmSummary, at: Where): Promise<void> {
    if (listed.leaseInvalid !== undefined) return this.invalid(listed, at);
    if (!listed.leaseExpires) return;
    const due = await this.dueStep(listed, at);
    if (!due) return;
    const vm = await this.fresh(listed, at);
    if (!vm) return;
    if (vm.leaseInvalid !== undefined) return this.invalid(vm, at);
    if (!vm.leaseExpires) return;
    // Decided again on vCenter's answer: a lease extended meanwhile (from Slack or the vSphere Client) moves every step.
    const step = await this.dueStep(vm, at);
    if (!step) return;
    const expires = Date.parse(vm.leaseExpires);
    const key = stepKey(at.key(vm.moref), expires, stepName(step));
    if (!(await this.claims.claim(key))) return;
    const outcome = await this.act(vm, expires, step, key, at).catch(async (err: unknown) => {
      // Not done: give the step back so the next round tries again.
      this.d.metrics?.steps.inc({ step: step.kind, outcome: "failed" });
      await this.claims.release(key).catch(() => undefined);
      throw err;
    });
    if (outcome === undefined) {
      await this.claims.release(key);
      return;
    }
    await this.claims.done(key, outcome);
    this.d.metrics?.steps.inc({ step: step.kind, outcome });
  }

  /**
   * The step due now for a VM's lease, if it is not done yet: the nearest reminder window it is in,
   * the power-off once the end has passed, the grace step once `grace` has passed since the end
   * (or since the power-off, if the keeper was down at the end: the owner always gets the full
   * grace after being told).
   */
  private async dueStep(vm: VmSummary, at: Where): Promise<Step | undefined> {
    const l = this.d.policy.leases;
    const expires = Date.parse(vm.leaseExpires!);
    const now = this.now();
    const isDone = async (s: Step) => (await this.claims.read(stepKey(at.key(vm.moref), expires, stepName(s))))?.record;
    if (now < expires) {
      const windows = [...l.remindBefore].sort((a, b) => a - b).filter((b) => now >= expires - b);
      const nearest = windows[0];
      if (nearest === undefined) return undefined;
      const step: Step = { kind: "remind", beforeMs: nearest };
      return (await isDone(step))?.state === "done" ? undefined : step;
    }
    const expired = await isDone({ kind: "expire" });
    if (expired?.state !== "done") return { kind: "expire" };
    const graceStart = Math.max(expires, Date.parse(expired.at));
    if (now < graceStart + l.grace) return undefined;
    const grace: Step = { kind: "grace", graceStart };
    return (await isDone(grace))?.state === "done" ? undefined : grace;
  }

  /**
   * The deletes a keeper issued and did not see through (killed before its notice and audit
   * record were out: `deletes-in-flight.<step key>`). Each is claimed as its step (a keeper still
   * deleting holds the claim: left to it); then, the VM gone from vCenter, the notice and audit
   * record are sent under the step's ids (a repeat of what the dead keeper sent is dropped), the
   * step marked done and the marker removed. A VM still there was not deleted: the marker is
   * removed and the step given back, for the round to decide again on the VM as it is now.
   */
  async finishDeletes(): Promise<void> {
    let markers;
    try {
      markers = await this.inFlight.all();
    } catch (err) {
      this.d.log.warn({ err }, "could not read the lease deletes in flight; the next round tries again");
      return;
    }
    for (const { stepKey: key, record } of markers) {
      if (this.stopped) return;
      await this.finishDelete(key, record).catch((err: unknown) => this.d.log.warn({ err, key, vm: record.vm.name }, "could not finish a lease delete in flight; the next round tries again"));
    }
  }

  private async finishDelete(key: string, m: DeleteInFlight): Promise<void> {
    // Done is written after the notice and audit record: only the marker was left.
    if ((await this.claims.read(key))?.record.state === "done") return this.inFlight.remove(key);
    if (!(await this.claims.claim(key))) return;
    let still: VmSummary | undefined;
    try {
      // In the vCenter the delete was issued in (a marker of before there were several: the default one).
      still = await this.fresh(m.vm, whereOf(m.vcenter ?? "default"));
    } catch (err) {
      await this.claims.release(key).catch(() => undefined);
      throw err;
    }
    if (still) {
      this.d.log.info({ key, vm: m.vm.name }, "a lease delete in flight did not happen; the step is decided again");
      await this.inFlight.remove(key);
      await this.claims.release(key);
      return;
    }
    this.d.log.warn({ key, vm: m.vm.name, by: m.by }, "a keeper deleted a VM at the end of its lease and stopped before telling anyone; telling now");
    await this.deleted(m.vm, key, m);
    await this.claims.done(key, "deleted");
    this.d.metrics?.steps.inc({ step: "grace", outcome: "deleted" });
  }

  /** The notice and the audit record of a lease-end delete, under the step's ids; then its marker removed. */
  private async deleted(vm: VmFacts, key: string, m: DeleteInFlight): Promise<void> {
    await this.tell(vm, key, "lease.deleted", "info", m.text, [], m.to);
    await this.audit(vm, key, Date.parse(m.expires), "deleted", m.message);
    await this.inFlight.remove(key);
  }

  /** The VM as vCenter has it now, when it is still the one listed (same moref); undefined otherwise. */
  private async fresh(listed: VmFacts, at: Where): Promise<VmSummary | undefined> {
    try {
      const { vm } = await requestJson(this.d.nc, ProxyEndpoints.vmGet, { ...at.req, vm: listed.path ?? listed.name }, { timeoutMs: this.d.config.proxyTimeoutMs });
      return vm.moref === listed.moref ? vm : undefined;
    } catch (err) {
      if (err instanceof IaasError && (err.code === "IAAS_VM_NOT_FOUND" || err.code === "IAAS_NOT_FOUND")) return undefined;
      throw err;
    }
  }

  /** Does one claimed step; returns its outcome, or undefined when it turned out not to be due. */
  private async act(vm: VmSummary, expires: number, step: Step, key: string, at: Where): Promise<string | undefined> {
    const l = this.d.policy.leases;
    const protection = this.d.policy.protectionOf(vm.name, vm.path);
    const keeps = l.afterGrace === "keep" || protection !== undefined;
    const afterEnd = keeps
      ? `it will be kept, powered off${protection !== undefined ? ` (it is protected: ${protection}; a lease never deletes it)` : ""}`
      : `it will be deleted ${formatDuration(l.grace)} later`;
    switch (step.kind) {
      case "remind": {
        const left = formatDuration(expires - this.now());
        await this.tell(vm, key, "lease.reminder", "warning", `The lease of \`${vm.name}\`${at.words} ends in ${left} (${utc(expires)}). Then it is powered off, and ${afterEnd}. Extend it to keep it running.`, [
          { label: `Extend by ${formatDuration(l.default)}`, text: `extend ${vm.name}${at.vc}`, style: "primary" },
          { label: "Delete now", text: `delete ${vm.name}${at.vc}`, style: "danger" },
        ]);
        await this.audit(vm, key, expires, "reminded", `reminded the owner: the lease ends in ${left}`);
        return "sent";
      }
      case "expire": {
        let outcome = "already-off";
        if (vm.powerState !== "poweredOff") {
          try {
            await requestJson(this.d.nc, ProxyEndpoints.vmPower, { ...at.req, vm: vm.path ?? vm.name, action: "off", timeoutMs: this.d.config.proxyTimeoutMs }, { timeoutMs: this.d.config.proxyTimeoutMs + 5_000, requestId: requestIdOf(key) });
            outcome = "powered-off";
          } catch (err) {
            // Off already (a keeper that died after its power-off): the step is done all the same.
            if (!(err instanceof IaasError && err.code === "IAAS_INVALID_POWER_STATE")) throw err;
          }
        }
        const until = keeps ? afterEnd : `it will be deleted at ${utc(Math.max(expires, this.now()) + l.grace)} unless its lease is extended`;
        await this.tell(vm, key, "lease.expired", "warning", `The lease of \`${vm.name}\`${at.words} ended at ${utc(expires)}, so it is powered off; ${until}.`, [
          { label: "Extend and power on", text: `extend ${vm.name} power=on${at.vc}`, style: "primary" },
          { label: `Extend by ${formatDuration(l.default)}`, text: `extend ${vm.name}${at.vc}` },
        ]);
        await this.audit(vm, key, expires, "powered-off", outcome === "powered-off" ? "powered off at the end of its lease" : "its lease ended; it was already powered off");
        return outcome;
      }
      case "grace": {
        if (keeps) {
          const why = protection !== undefined ? `it is protected (${protection}), and a lease never deletes a protected VM` : "the policy keeps VMs after the grace";
          await this.tell(vm, key, "lease.kept", "info", `The lease of \`${vm.name}\`${at.words} ended at ${utc(expires)} and the grace is over; it was not deleted: ${why}. It stays powered off until someone extends its lease or powers it on.`, [
            { label: "Extend and power on", text: `extend ${vm.name} power=on${at.vc}`, style: "primary" },
          ]);
          await this.audit(vm, key, expires, "kept", `kept after the grace: ${why}`);
          return "kept";
        }
        const to = this.recipientOf(vm);
        const marker: DeleteInFlight = {
          vm: { name: vm.name, ...(vm.path ? { path: vm.path } : {}), moref: vm.moref, ...(vm.owner ? { owner: vm.owner } : {}), ...(vm.team ? { team: vm.team } : {}) },
          ...(at.req.vcenter !== undefined ? { vcenter: at.req.vcenter } : {}),
          expires: new Date(expires).toISOString(),
          ...(to ? { to } : {}),
          text: `\`${vm.name}\`${at.words} was deleted: its lease ended at ${utc(expires)} and the grace of ${formatDuration(l.grace)} is over.`,
          message: `deleted ${formatDuration(l.grace)} after the end of its lease`,
          by: this.by,
          at: new Date(this.now()).toISOString(),
        };
        // Durable before the delete: a keeper killed after it leaves what the next round needs to tell.
        await this.inFlight.put(key, marker);
        try {
          const out = await requestJson(
            this.d.nc,
            ProxyEndpoints.vmDestroy,
            { ...at.req, vm: vm.path ?? vm.name, powerOffFirst: true, expect: { moref: vm.moref, leaseExpires: new Date(expires).toISOString() }, timeoutMs: this.d.config.proxyTimeoutMs },
            { timeoutMs: this.d.config.proxyTimeoutMs + 5_000, requestId: requestIdOf(key) },
          );
          if (!out.destroyed) {
            await this.inFlight.remove(key);
            return "gone";
          }
        } catch (err) {
          // Its lease or the VM changed between the read and the delete: nothing was deleted; decided again next round.
          if (err instanceof IaasError && err.code === "IAAS_INVALID_STATE") {
            await this.inFlight.remove(key);
            return undefined;
          }
          // Anything else (a timeout) may have deleted it all the same: the marker stays for finishDeletes.
          throw err;
        }
        await this.deleted(vm, key, marker);
        return "deleted";
      }
    }
  }

  /** A lease attribute that is not a time: nothing is done to the VM; IT is told once per value. */
  private async invalid(vm: VmSummary, at: Where): Promise<void> {
    const text = vm.leaseInvalid ?? "";
    const key = `${safe(at.key(vm.moref))}.invalid.${createHash("sha256").update(text).digest("hex").slice(0, 16)}`;
    if ((await this.claims.read(key))?.record.state === "done") return;
    if (!(await this.claims.claim(key))) return;
    const message = `The lease of \`${vm.name}\`${at.words} cannot be read: its custom attribute iaas.lease.expires holds \`${text.slice(0, 60)}\`, not a time such as 2027-01-31T12:00:00Z. The VM has no lease in force and nothing is done to it; an IT admin sets one with \`/iaas lease ${vm.name} set 30d${at.vc}\` or removes it with \`/iaas lease ${vm.name} none${at.vc}\`.`;
    const notice: Notice = { id: `lease-${key}`.slice(0, 128), kind: "lease.invalid", severity: "warning", text: message, vm: vm.name.slice(0, 255), at: new Date(this.now()).toISOString() };
    await this.d.js.publish(noticeSubject(notice.kind), encodeJson(notice), { msgID: notice.id });
    await this.audit(vm, key, undefined, "invalid", "its lease attribute is not a time; IT told, nothing done");
    await this.claims.done(key, "told");
    this.d.metrics?.steps.inc({ step: "invalid", outcome: "told" });
  }

  /**
   * A notice to whoever answers for the VM: its team's channel when the policy names one, else its
   * owner (a DM), else the notify channel. Its id is the step's key, so it is posted once.
   */
  private async tell(vm: VmFacts, key: string, kind: Notice["kind"], severity: Notice["severity"], text: string, buttons: NonNullable<Notice["buttons"]>, to = this.recipientOf(vm)): Promise<void> {
    const notice: Notice = {
      id: `lease-${key}`.slice(0, 128),
      kind,
      severity,
      text: text.slice(0, 3000),
      vm: vm.name.slice(0, 255),
      ...(to ? { to } : {}),
      ...(buttons.length ? { buttons } : {}),
      at: new Date(this.now()).toISOString(),
    };
    await this.d.js.publish(noticeSubject(kind), encodeJson(notice), { msgID: notice.id });
  }

  private recipientOf(vm: VmFacts): string | undefined {
    const channel = vm.team !== undefined ? this.d.policy.document.teams[vm.team]?.channel : undefined;
    return channel ?? vm.owner;
  }

  private async audit(vm: VmFacts, key: string, expires: number | undefined, step: LeaseAudit["step"], message: string): Promise<void> {
    const rec: LeaseAudit = {
      kind: "lease",
      id: key.slice(0, 128),
      step,
      vm: vm.name,
      moref: vm.moref,
      ...(expires !== undefined ? { expires: new Date(expires).toISOString() } : {}),
      ...(vm.owner ? { owner: vm.owner } : {}),
      ...(vm.team ? { team: vm.team } : {}),
      message,
      at: new Date(this.now()).toISOString(),
    };
    // The step's key as Nats-Msg-Id: a step redone after a crash is recorded once.
    await this.d.js.publish(Subjects.audit("lease"), encodeJson(rec), { msgID: `audit-lease-${key}` });
  }
}

/** A request id for the proxy's in-flight join (`A-Z a-z 0-9 _ -`, 8-64): a step repeated while its first call runs joins it. */
function requestIdOf(key: string): string {
  return `lease_${createHash("sha256").update(key).digest("hex").slice(0, 40)}`;
}
