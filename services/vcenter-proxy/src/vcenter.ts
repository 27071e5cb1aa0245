import { IaasError, PowerStateAfter, PowerStateSchema, PowerStateWords, VM_LEASES_MAX_PAGE, VM_LIST_MAX_BYTES, VM_LIST_MAX_VMS, type PowerAction, type VmSummary, type VmInfo, type TemplateInfo, type DatastoreInfo, type Usage } from "@iaas/contracts";
import {
  VimClient,
  VirtualMachine,
  VM_SUMMARY_PATHS,
  VmIndex,
  type IndexedVm,
  TASK_STATE_PATHS,
  VmProps,
  isVimFault,
  parseCustomValues,
  parseSnapshotTree,
  type Task,
  inventoryPath,
  inventoryPathFrom,
  PARENT_CHAIN,
  type TraversalSpec,
  listDatastores,
  listHosts,
  parseVmSummary,
  refKey,
  type MoRef,
  type ObjectProps,
  type VmSummary as VimVmSummary,
} from "@iaas/vsphere";
import type { Logger } from "@iaas/runtime";
import { compileGlob } from "@iaas/policy";
import { toIaasError } from "./faults.js";
import { FirstByName, ListView, listWanted } from "./list_view.js";

export { FirstByName } from "./list_view.js";

const ACTION_WORDS: Record<PowerAction, string> = {
  on: "power on",
  off: "power off",
  reset: "reset",
  suspend: "suspend",
  shutdown: "shut down",
  reboot: "reboot",
};

/**
 * extraConfig keys the product writes into VMs it makes: who asked, and by which command. The
 * owner in extraConfig is what version 1 kept (the custom attribute `iaas.owner` is read first);
 * a create still writes it, in the same call that makes the VM, so a VM is never without an owner
 * even when the proxy stops between CreateVM and SetField.
 */
export const OWNER_KEY = "iaas.owner";
export const REQUEST_KEY = "iaas.request";

/**
 * The custom attributes (CustomFieldsManager fields for VirtualMachine) holding a VM's owner (a
 * Slack user id) and team (a user group id or policy team name): visible in the vSphere Client.
 * An empty value is no value (SetField cannot remove one; an empty string is how it is cleared).
 */
export const OWNER_FIELD = "iaas.owner";
export const TEAM_FIELD = "iaas.team";

/**
 * The custom attribute holding a VM's lease end, ISO 8601 UTC (`2027-01-31T12:00:00.000Z`), so IT
 * sees it in the vSphere Client and a VM keeps its lease if iaas is reinstalled. Empty: no lease.
 */
export const LEASE_FIELD = "iaas.lease.expires";

/** What `iaas.lease.expires` may hold: a date and time with a zone (as written, or typed by hand in that form). */
const LEASE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$/i;

/**
 * A lease attribute's text as the contract has it: a valid time (normalised to UTC) in
 * `leaseExpires`, anything else in `leaseInvalid`, so a hand-edited value is never read as a
 * lease that has ended; an empty value is no lease.
 */
export function leaseOf(raw: string | undefined): { leaseExpires?: string; leaseInvalid?: string } {
  const text = raw?.trim() ?? "";
  if (text === "") return {};
  const t = LEASE_TIME.test(text) ? Date.parse(text) : Number.NaN;
  if (!Number.isFinite(t)) return { leaseInvalid: text.slice(0, 100) };
  return { leaseExpires: new Date(t).toISOString() };
}

/** What vm-list asks: see ProxyEndpoints.vmList. */
export interface ListQuery {
  owner?: string | undefined;
  scope?: { owner: string; teams: string[] } | undefined;
  includeTemplates?: boolean | undefined;
  glob?: string | undefined;
  limit?: number | undefined;
}

/**
 * VMs per read when every VM is read from vCenter (a list without the live index, the owner
 * migration): what one read may cost in memory.
 */
const LIST_PAGE = 500;

/** Morefs in their numbering: `vm-12` before `vm-100`. */
const BY_MOREF = new Intl.Collator(undefined, { numeric: true });

/** A contract summary from the live index alone (no path: `list` does not show it). */
function indexedSummary(v: IndexedVm, keys: FieldKeys): VmSummary {
  const owner = v.customValues.get(keys.owner) || undefined;
  const team = v.customValues.get(keys.team) || undefined;
  return {
    name: v.name,
    moref: v.ref.value,
    powerState: PowerStateSchema.safeParse(v.powerState).success ? (v.powerState as VmSummary["powerState"]) : "poweredOff",
    numCpu: v.numCPU ?? 0,
    memoryMB: v.memoryMB ?? 0,
    template: v.template,
    ...(owner ? { owner } : {}),
    ...(team ? { team } : {}),
    ...leaseOf(v.customValues.get(keys.lease)),
  };
}

/** The keys vCenter gave the custom attributes. */
export interface FieldKeys {
  owner: number;
  team: number;
  lease: number;
}

/** What the proxy reads of a VM: the client's summary paths plus provenance and hot-plug limits. */
export const VM_PATHS = [...VM_SUMMARY_PATHS, VmProps.extraConfig, VmProps.customValue, VmProps.hotPlugMemoryLimit, VmProps.hotPlugMemoryIncrementSize, VmProps.snapshot] as const;

/**
 * What a contract VmSummary (`toContractSummary`) needs, and no more: the device list and guest
 * facts of VM_PATHS make a read several times larger, so answers that do not show them skip them.
 */
export const VM_BRIEF_PATHS = [VmProps.name, VmProps.powerState, VmProps.numCPU, VmProps.memoryMB, VmProps.template, VmProps.extraConfig, VmProps.customValue, VmProps.snapshot] as const;

/** What vm-usage reads of every VM when the live index is not there to answer. */
const USAGE_PATHS = [VmProps.name, VmProps.powerState, VmProps.template, VmProps.numCPU, VmProps.memoryMB, VmProps.devices, VmProps.extraConfig, VmProps.customValue] as const;

/** From a VM to what `info` names: its host and its datastores. */
const INFO_TRAVERSAL: TraversalSpec[] = [
  { _type: "TraversalSpec", name: "vmHost", type: "VirtualMachine", path: VmProps.host, skip: false },
  { _type: "TraversalSpec", name: "vmDatastores", type: "VirtualMachine", path: VmProps.datastore, skip: false },
];

/** What a look-up reads to tell a VM from a template. */
const KIND_PATHS = [VmProps.name, VmProps.template] as const;

/** A VM as read by the proxy: the client's summary plus what the product adds. */
export interface VmRecord {
  summary: VimVmSummary;
  owner: string | undefined;
  team: string | undefined;
  /** Whether the owner came from the custom attribute (false: from version 1's extraConfig, or none). */
  ownerInField: boolean;
  /** `iaas.lease.expires` as it is written (unset: none). */
  lease: string | undefined;
  requestId: string | undefined;
  hotPlugMemoryLimitMB: number | undefined;
  hotPlugMemoryIncrementMB: number | undefined;
  /**
   * How many snapshots the VM has (the whole tree): undefined when the read did not ask for the
   * tree, or (vCenter leaves the property unset) when the VM has none; `record` tells the two apart.
   */
  snapshots: number | undefined;
}

/** Owner and team from the custom values, the owner falling back to version 1's extraConfig key. */
export function ownershipOf(props: Record<string, unknown>, keys: FieldKeys): { owner: string | undefined; team: string | undefined; ownerInField: boolean } {
  const values = parseCustomValues(props[VmProps.customValue]);
  const field = values.get(keys.owner) || undefined;
  const team = values.get(keys.team) || undefined;
  const owner = field ?? (extraConfig(props[VmProps.extraConfig]).get(OWNER_KEY) || undefined);
  return { owner, team, ownerInField: field !== undefined };
}

export function parseVmRecord(r: ObjectProps, keys: FieldKeys): VmRecord {
  const extra = extraConfig(r.props[VmProps.extraConfig]);
  const num = (v: unknown) => (typeof v === "number" ? v : typeof v === "string" && v !== "" ? Number(v) : undefined);
  return {
    summary: parseVmSummary(r),
    ...ownershipOf(r.props, keys),
    lease: parseCustomValues(r.props[VmProps.customValue]).get(keys.lease) || undefined,
    requestId: extra.get(REQUEST_KEY),
    hotPlugMemoryLimitMB: num(r.props[VmProps.hotPlugMemoryLimit]),
    hotPlugMemoryIncrementMB: num(r.props[VmProps.hotPlugMemoryIncrementSize]),
    snapshots: r.props[VmProps.snapshot] === undefined ? undefined : parseSnapshotTree(r.props[VmProps.snapshot]).snapshots.length,
  };
}

function extraConfig(v: unknown): Map<string, string> {
  const out = new Map<string, string>();
  for (const o of Array.isArray(v) ? v : v ? [v] : []) {
    const ov = o as { key?: unknown; value?: unknown };
    if (typeof ov.key === "string" && ov.value !== undefined && ov.value !== null) out.set(ov.key, String(ov.value));
  }
  return out;
}

export interface FoundVm {
  ref: MoRef;
  name: string;
  /** From the live index without a read of vCenter: a caller that reads the VM checks the name. */
  indexed?: boolean;
  template?: boolean;
}

export interface FindOptions {
  /**
   * Take the live index's answer without reading the VM back. For callers that read the VM next
   * anyway (and check its name) or whose operation a stale answer cannot misdirect further than a
   * listing could (a VM renamed between look-up and operation).
   */
  trustIndex?: boolean;
  /** Ask vCenter, not the index (a retry after the index's answer turned out stale). */
  fresh?: boolean;
}

/** The index named a VM that is gone or renamed: look again in vCenter. */
class StaleIndex extends Error {}

/** Whether `err` means the index's answer for `found` was out of date (so vCenter is asked again). */
function isStale(err: unknown, found: FoundVm): boolean {
  return err instanceof StaleIndex || (found.indexed === true && isVimFault(err, "ManagedObjectNotFound"));
}

export interface VcenterOptions {
  /** Keep a live name → VM index (VmIndex) instead of listing every VM per look-up. */
  liveIndex?: boolean;
  /** VMs per page when a list is read from vCenter (no live index); default LIST_PAGE. */
  listPage?: number;
}

/**
 * One vCenter, as the product sees it: VMs found by exact name or inventory path, operations that
 * wait for their task and read the result back. Every vSphere failure leaves as an IaasError.
 */
export class Vcenter {
  readonly index: VmIndex | undefined;
  /** The index as `list` reads it, once the index is live and the attribute keys are known. */
  private view: ListView | undefined;
  private readonly listPage: number;
  private fieldKeys: Promise<FieldKeys> | undefined;
  /** False once this vCenter showed it has no working AlarmManager (listed in none, or MethodNotFound). */
  private alarmsWork: boolean | undefined;

  constructor(
    readonly id: string,
    readonly client: VimClient,
    readonly log: Logger,
    opts: VcenterOptions = {},
  ) {
    this.listPage = opts.listPage ?? LIST_PAGE;
    if (opts.liveIndex) {
      this.index = new VmIndex(client, { logger: log });
      // Not awaited: until it is live, look-ups ask vCenter.
      this.index.start().then(
        // Built now if the keys are known (the start-up migration asks for them), else with them.
        () => void this.fieldKeys?.then((keys) => this.listView(keys), () => undefined),
        (err: unknown) => log.warn({ err }, "inventory index not live yet; look-ups ask vCenter"),
      );
    }
  }

  /**
   * The keys of the custom attributes `iaas.owner` and `iaas.team`, defined in vCenter on first
   * use when missing (AddCustomFieldDef; a racing definer's DuplicateName is read back). Kept for
   * the process; a failure is not kept, so the next call tries again.
   */
  fields(): Promise<FieldKeys> {
    this.fieldKeys ??= (async () => {
      const cfm = this.client.customFieldsManager;
      const owner = await cfm.ensure(OWNER_FIELD, "VirtualMachine");
      const team = await cfm.ensure(TEAM_FIELD, "VirtualMachine");
      const lease = await cfm.ensure(LEASE_FIELD, "VirtualMachine");
      this.log.info({ owner: owner.key, team: team.key, lease: lease.key }, "custom attributes iaas.owner, iaas.team and iaas.lease.expires are defined");
      const keys = { owner: owner.key, team: team.key, lease: lease.key };
      if (this.index?.live) this.listView(keys);
      return keys;
    })().catch((err: unknown) => {
      this.fieldKeys = undefined;
      throw toIaasError(err, { action: "read the custom attributes iaas.owner, iaas.team and iaas.lease.expires" });
    });
    return this.fieldKeys;
  }

  /**
   * AlarmManager.AcknowledgeAlarm: marks a triggered alarm on `entity` as acknowledged, so the
   * vSphere Client shows people it is being handled. A vCenter without a working AlarmManager (no
   * AlarmManager in its ServiceContent, or MethodNotFound / NotSupported / NotImplemented as the
   * simulator answers) is told apart once, with a debug line, and never asked again: `unsupported`.
   */
  async acknowledgeAlarm(alarm: string, entity: MoRef): Promise<{ acknowledged: boolean; unsupported: boolean }> {
    const manager = this.client.serviceContent.alarmManager;
    if (this.alarmsWork === false || !manager) {
      if (this.alarmsWork === undefined) this.log.debug("this vCenter lists no AlarmManager: alarms remediation handled are not acknowledged in vCenter");
      this.alarmsWork = false;
      return { acknowledged: false, unsupported: true };
    }
    try {
      await this.client.invoke("AcknowledgeAlarm", manager, [
        ["alarm", { type: "Alarm", value: alarm }, "MoRef"],
        ["entity", entity, "MoRef"],
      ]);
      this.alarmsWork = true;
      return { acknowledged: true, unsupported: false };
    } catch (err) {
      if (isVimFault(err) && (err.is("MethodNotFound") || err.is("NotSupported") || err.is("NotImplemented"))) {
        this.alarmsWork = false;
        this.log.debug({ fault: err.faultType }, "this vCenter's AlarmManager does not take AcknowledgeAlarm: alarms remediation handled are not acknowledged in vCenter");
        return { acknowledged: false, unsupported: true };
      }
      throw toIaasError(err, { action: `acknowledge alarm ${alarm} on ${entity.type} ${entity.value}` });
    }
  }

  /** A parser of VM reads, once the custom attribute keys are known. */
  private async parser(): Promise<(r: ObjectProps) => VmRecord> {
    const keys = await this.fields();
    return (r) => parseVmRecord(r, keys);
  }

  /**
   * Writes a VM this proxy just made or changed through to the live index, so the next vm-usage
   * counts it without waiting for the feed (and on the simulator, whose feed never reports
   * custom values, at all).
   */
  async noteVm(rec: VmRecord): Promise<void> {
    if (!this.index) return;
    const keys = await this.fields();
    const s = rec.summary;
    this.index.note({
      ref: s.ref,
      name: s.name,
      template: s.template,
      parent: s.parent,
      powerState: s.powerState,
      numCPU: s.numCPU,
      memoryMB: s.memoryMB,
      diskKB: s.disks.reduce((n, d) => n + d.capacityInKB, 0),
      customValues: new Map([
        [keys.owner, rec.ownerInField ? (rec.owner ?? "") : ""],
        [keys.team, rec.team ?? ""],
        [keys.lease, rec.lease ?? ""],
      ]),
    });
  }

  /**
   * Sets the owner and/or team custom attribute where it differs from `rec`, writing each through
   * to the index. `team: null` clears the team (an empty value). Returns whether anything changed.
   */
  async setOwnership(rec: VmRecord, want: { owner?: string | undefined; team?: string | null | undefined }): Promise<boolean> {
    const keys = await this.fields();
    const cfm = this.client.customFieldsManager;
    const ref = rec.summary.ref;
    let changed = false;
    // An owner read from version 1's extraConfig only is written to the attribute too.
    if (want.owner !== undefined && (want.owner !== rec.owner || !rec.ownerInField)) {
      await cfm.setField(ref, keys.owner, want.owner);
      this.index?.noteCustomValue(ref, keys.owner, want.owner);
      changed ||= want.owner !== rec.owner;
    }
    const team = want.team === null ? "" : want.team;
    if (team !== undefined && team !== (rec.team ?? "")) {
      await cfm.setField(ref, keys.team, team);
      this.index?.noteCustomValue(ref, keys.team, team);
      changed = true;
    }
    return changed;
  }

  /** vm-set-owner: a VM's owner and/or team; a template is refused. */
  async setOwner(vm: string, want: { owner?: string | undefined; team?: string | null | undefined }): Promise<{ vm: VmSummary; changed: boolean }> {
    const found = await this.findVm(vm, "any");
    try {
      const rec = await this.record(found.ref, VM_BRIEF_PATHS);
      if (rec.summary.template) throw new IaasError("IAAS_INVALID_ARGUMENT", `\`${found.name}\` is a template: templates have no owner or team; deploy it to get a VM.`);
      const changed = await this.setOwnership(rec, want);
      if (changed) this.log.info({ vm: found.name, owner: want.owner, team: want.team }, "set the VM's owner or team");
      return { vm: await this.summary(found.ref), changed };
    } catch (err) {
      throw toIaasError(err, { vm: found.name, action: "set the VM's owner" });
    }
  }

  /**
   * vm-set-lease: writes `iaas.lease.expires` (an ISO time, or empty for none) through to the
   * index; a template is refused. Unchanged when the attribute already says the same time.
   */
  async setLease(vm: string, expires: string | null): Promise<{ vm: VmSummary; changed: boolean }> {
    const found = await this.findVm(vm, "any");
    try {
      const rec = await this.record(found.ref, VM_BRIEF_PATHS);
      if (rec.summary.template) throw new IaasError("IAAS_INVALID_ARGUMENT", `\`${found.name}\` is a template: templates have no lease; deploy it to get a VM.`);
      const want = expires === null ? "" : new Date(expires).toISOString();
      const now = leaseOf(rec.lease);
      const same = want === "" ? rec.lease === undefined || rec.lease === "" : now.leaseExpires === want;
      if (!same) {
        const keys = await this.fields();
        await this.client.customFieldsManager.setField(found.ref, keys.lease, want);
        this.index?.noteCustomValue(found.ref, keys.lease, want);
        this.log.info({ vm: found.name, moref: found.ref.value, expires: want || null }, "set the VM's lease");
      }
      return { vm: await this.summary(found.ref), changed: !same };
    } catch (err) {
      throw toIaasError(err, { vm: found.name, action: "set the VM's lease" });
    }
  }

  /**
   * vm-leases: the VMs whose lease attribute is set (valid or not), by moref after `after`, at
   * most `limit`; `next` when more follow. From the live index (no call to vCenter) when live,
   * else one paged walk of vCenter keeping only the page asked for.
   */
  async leases(q: { after?: string | undefined; limit?: number | undefined }): Promise<{ vms: VmSummary[]; next?: string }> {
    try {
      const keys = await this.fields();
      const limit = q.limit ?? VM_LEASES_MAX_PAGE;
      const after = q.after;
      const page: VmSummary[] = [];
      let more = false;
      // By moref in vCenter's numbering (`vm-12` before `vm-100`); the page stays sorted by binary
      // insertion, so a large inventory costs a comparison per leased VM past the page.
      const offer = (moref: string, make: () => VmSummary) => {
        if (after !== undefined && BY_MOREF.compare(moref, after) <= 0) return;
        if (page.length === limit && BY_MOREF.compare(page[page.length - 1]!.moref, moref) <= 0) {
          more = true;
          return;
        }
        let lo = 0;
        let hi = page.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (BY_MOREF.compare(page[mid]!.moref, moref) <= 0) lo = mid + 1;
          else hi = mid;
        }
        page.splice(lo, 0, make());
        if (page.length > limit) {
          page.pop();
          more = true;
        }
      };
      if (this.index?.live) {
        for (const v of this.index.all()) {
          if (v.template || !v.customValues.get(keys.lease)) continue;
          offer(v.ref.value, () => indexedSummary(v, keys));
        }
      } else {
        await this.client.propertyCollector.eachInContainer("VirtualMachine", VM_BRIEF_PATHS, this.listPage, (objects) => {
          for (const r of objects) {
            if (r.props[VmProps.name] === undefined || r.props[VmProps.template] === true) continue;
            const rec = parseVmRecord(r, keys);
            if (rec.lease) offer(rec.summary.ref.value, () => toContractSummary(rec));
          }
        });
      }
      return { vms: page, ...(more && page.length ? { next: page[page.length - 1]!.moref } : {}) };
    } catch (err) {
      throw toIaasError(err, { action: "list the leased VMs" });
    }
  }

  /**
   * What the VMs (not templates) of an owner and/or a team use. From the live index when it is
   * live (no call to vCenter; it holds each VM's size and custom values, and this proxy writes its
   * own changes through), visiting only the owner's and the team's VMs (ListView); otherwise one
   * read of every VM, devices included.
   */
  async usage(q: { owner?: string | undefined; team?: string | undefined }): Promise<{ owner?: Usage; team?: Usage }> {
    try {
      const keys = await this.fields();
      const tally = () => ({ vms: 0, cpu: 0, memoryMB: 0, diskKB: 0 });
      const own = tally();
      const team = tally();
      const add = (t: ReturnType<typeof tally>, cpu: number | undefined, memoryMB: number | undefined, diskKB: number) => {
        t.vms++;
        t.cpu += cpu ?? 0;
        t.memoryMB += memoryMB ?? 0;
        t.diskKB += diskKB;
      };
      const count = (o: { owner: string | undefined; team: string | undefined }, cpu: number | undefined, memoryMB: number | undefined, diskKB: number) => {
        if (q.owner !== undefined && o.owner === q.owner) add(own, cpu, memoryMB, diskKB);
        if (q.team !== undefined && o.team === q.team) add(team, cpu, memoryMB, diskKB);
      };
      if (this.index?.live) {
        // The owner's and the team's VMs alone, from the list view. The index holds custom values
        // only: a VM whose owner is still in version 1's extraConfig only counts once the start-up
        // migration has copied it.
        const view = this.listView(keys);
        if (q.owner !== undefined) for (const v of view.ownedBy(q.owner)) if (!v.template) add(own, v.numCPU, v.memoryMB, v.diskKB);
        if (q.team !== undefined) for (const v of view.inTeam(q.team)) if (!v.template) add(team, v.numCPU, v.memoryMB, v.diskKB);
      } else {
        const rs = await this.client.retrieveContainer("VirtualMachine", USAGE_PATHS);
        for (const r of rs) {
          if (r.props[VmProps.name] === undefined || r.props[VmProps.template] === true) continue;
          const s = parseVmSummary(r);
          count(ownershipOf(r.props, keys), s.numCPU, s.memoryMB, s.disks.reduce((n, d) => n + d.capacityInKB, 0));
        }
      }
      const out = (t: ReturnType<typeof tally>): Usage => ({ vms: t.vms, cpu: t.cpu, memoryGB: round(t.memoryMB / 1024), diskGB: round(t.diskKB / (1024 * 1024)) });
      return { ...(q.owner !== undefined ? { owner: out(own) } : {}), ...(q.team !== undefined ? { team: out(team) } : {}) };
    } catch (err) {
      throw toIaasError(err, { action: "count the VMs' use" });
    }
  }

  /**
   * Copies version 1's owners (extraConfig `iaas.owner`) into the custom attribute for every VM
   * that has one there and none in the attribute. Idempotent; returns how many VMs it changed.
   */
  async migrateOwners(): Promise<number> {
    const parse = await this.parser();
    // Page by page, keeping only the VMs to change: memory is a page, not the inventory.
    const todo: VmRecord[] = [];
    await this.client.propertyCollector.eachInContainer("VirtualMachine", [VmProps.name, VmProps.powerState, VmProps.template, VmProps.extraConfig, VmProps.customValue], this.listPage, (objects) => {
      for (const r of objects) {
        if (r.props[VmProps.name] === undefined) continue;
        const rec = parse(r);
        if (rec.owner !== undefined && !rec.ownerInField) todo.push(rec);
      }
    });
    let n = 0;
    for (const rec of todo) {
      try {
        await this.setOwnership(rec, { owner: rec.owner });
        n++;
      } catch (err) {
        if (isVimFault(err, "ManagedObjectNotFound")) continue; // deleted meanwhile
        throw err;
      }
    }
    return n;
  }

  /** Stops the index's feed (before the client logs out). */
  async close(): Promise<void> {
    this.view?.close();
    await this.index?.stop();
  }

  /**
   * The list view of the live index, built on first use (one sort of what the index holds) and
   * kept by its notifications from then on, whether or not the index is live at a given moment.
   */
  listView(keys: FieldKeys): ListView {
    if (!this.index) throw new Error("no live index: this Vcenter lists from vCenter");
    return (this.view ??= new ListView(this.index, keys));
  }

  /**
   * Inventory path from the live index, else one read of the parent chain. A failed read answers
   * without a path (the VM's other facts are still worth having) and is logged: the command
   * services' folder protection then refuses rather than guess (a guard that cannot decide fails
   * closed).
   */
  async pathOf(ref: MoRef): Promise<string | undefined> {
    const fromIndex = this.index?.live ? this.index.pathOf(ref) : undefined;
    return (
      fromIndex ??
      (await inventoryPath(this.client, ref).catch((err: unknown) => {
        this.log.warn({ err, moref: ref.value }, "could not read the VM's inventory path; answering without it (folder protection will refuse)");
        return undefined;
      }))
    );
  }

  /**
   * Finds the VM and runs `fn` on it; if the live index's answer turns out stale (`fn` met a VM
   * that is gone, or read one whose name no longer matches), finds it again in vCenter and runs
   * `fn` once more. Only for `fn`s whose failure on a stale answer changed nothing: a read, or a
   * task vCenter refused because the VM is gone.
   */
  private async withVm<T>(vm: string, kind: "vm" | "template" | "any", fn: (found: FoundVm) => Promise<T>): Promise<T> {
    const found = await this.findVm(vm, kind, { trustIndex: true });
    try {
      return await fn(found);
    } catch (err) {
      if (!isStale(err, found)) throw err;
      return await fn(await this.findVm(vm, kind, { fresh: true }));
    }
  }

  /** For `withVm` callbacks: the VM read under the index's answer is not the one asked for. */
  private checkName(found: FoundVm, vm: string, actual: string): void {
    if (found.indexed && !vm.startsWith("/") && actual !== vm) throw new StaleIndex(`${found.ref.value} is now named ${actual}`);
  }

  /**
   * `<vm>` is an exact name or an inventory path beginning with `/`. Names are matched exactly,
   * case and all; two VMs with the same name (in different folders) are an error listing both paths.
   * `kind` says what the caller expects; templates are VirtualMachines too.
   */
  async findVm(vm: string, kind: "vm" | "template" | "any" = "any", opts: FindOptions = {}): Promise<FoundVm> {
    const what = kind === "template" ? "template" : "VM";
    try {
      if (!vm.startsWith("/") && !opts.fresh && this.index?.live) {
        const hits = this.index.lookup(vm);
        if (hits.length > 1) {
          const paths = await Promise.all(hits.map((h) => this.pathOf(h.ref)));
          throw new IaasError("IAAS_VM_AMBIGUOUS", `${hits.length} VMs are named \`${vm}\`: ${paths.map((p, i) => `\`${p ?? hits[i]!.ref.value}\``).join(", ")}. Use the path.`);
        }
        const hit = hits[0];
        // Not in the index: perhaps created a moment ago; vCenter has the last word below.
        if (hit && opts.trustIndex) {
          this.checkKind(vm, hit.template, kind);
          return { ref: hit.ref, name: vm, indexed: true, template: hit.template };
        }
        if (hit) {
          const [s] = await this.client.retrieve([hit.ref], KIND_PATHS).catch((err: unknown) => {
            if (isVimFault(err, "ManagedObjectNotFound")) return [];
            throw err;
          });
          if (s?.props[VmProps.name] === vm) {
            const template = s.props[VmProps.template] === true;
            this.checkKind(vm, template, kind);
            return { ref: hit.ref, name: vm, template };
          }
        }
      }
      if (vm.startsWith("/")) {
        const ref = await this.client.searchIndex.findByInventoryPath(vm);
        if (!ref || ref.type !== "VirtualMachine") throw new IaasError("IAAS_VM_NOT_FOUND", `No ${what} at \`${vm}\`. Check the path with \`/iaas ${kind === "template" ? "templates" : "list"}\`.`);
        const [s] = await this.client.retrieve([ref], KIND_PATHS);
        this.checkKind(vm, s?.props[VmProps.template] === true, kind);
        return { ref, name: String(s?.props[VmProps.name] ?? vm) };
      }
      const all = await this.client.retrieveContainer("VirtualMachine", KIND_PATHS);
      const hits = all.filter((o) => o.props[VmProps.name] === vm);
      if (hits.length === 0) throw new IaasError("IAAS_VM_NOT_FOUND", `No ${what} named \`${vm}\`. Names are exact and case-sensitive; see \`/iaas ${kind === "template" ? "templates" : "list"}\`.`);
      if (hits.length > 1) {
        const paths = await Promise.all(hits.map((h) => inventoryPath(this.client, h.obj)));
        throw new IaasError("IAAS_VM_AMBIGUOUS", `${hits.length} VMs are named \`${vm}\`: ${paths.map((p) => `\`${p}\``).join(", ")}. Use the path.`);
      }
      const template = hits[0]!.props[VmProps.template] === true;
      this.checkKind(vm, template, kind);
      return { ref: hits[0]!.obj, name: vm, template };
    } catch (err) {
      throw toIaasError(err, { vm, action: "find the VM" });
    }
  }

  private checkKind(vm: string, isTemplate: boolean, kind: "vm" | "template" | "any"): void {
    if (kind === "vm" && isTemplate) throw new IaasError("IAAS_INVALID_STATE", `\`${vm}\` is a template, not a VM; use \`/iaas deploy\` to make a VM from it.`);
    if (kind === "template" && !isTemplate) throw new IaasError("IAAS_INVALID_STATE", `\`${vm}\` is a VM, not a template; use \`/iaas clone\` to copy it.`);
  }

  async record(ref: MoRef, paths: readonly string[] = VM_PATHS): Promise<VmRecord> {
    const parse = await this.parser();
    const [r] = await this.client.retrieve([ref], paths);
    if (!r) throw new IaasError("IAAS_NOT_FOUND", "The VM no longer exists in vCenter.");
    const missing = Object.values(r.missing)[0];
    if (missing) throw missing;
    const rec = parse(r);
    // An unset tree is no snapshot at all, when the read asked for it.
    if (paths.includes(VmProps.snapshot)) rec.snapshots ??= 0;
    return rec;
  }

  async summary(ref: MoRef, withPath = true): Promise<VmSummary> {
    const [rec, path] = await Promise.all([this.record(ref, VM_BRIEF_PATHS), withPath ? this.pathOf(ref) : undefined]);
    return toContractSummary(rec, path);
  }

  async getVm(vm: string): Promise<VmSummary> {
    return this.readByName(vm, (ref) => this.summary(ref));
  }

  /** Finds the VM by name or path and reads it with `read`; a stale index answer is looked up again. */
  private readByName<T extends { name: string }>(vm: string, read: (ref: MoRef) => Promise<T>): Promise<T> {
    return this.withVm(vm, "any", async (found) => {
      try {
        const out = await read(found.ref);
        this.checkName(found, vm, out.name);
        return out;
      } catch (err) {
        if (isStale(err, found)) throw err;
        throw toIaasError(err, { vm: found.name });
      }
    });
  }

  /**
   * Everything `/iaas info` shows, in one round trip: the VM, the names of its host and datastores
   * (traversed to in the same read) and, when the live index does not know the path, its parent
   * chain. A datastore a disk names that is not among the VM's own is read by name afterwards.
   */
  async info(ref: MoRef): Promise<VmInfo> {
    const parse = await this.parser();
    const indexed = this.index?.live ? this.index.pathOf(ref) : undefined;
    const rs = await this.client.propertyCollector.retrievePropertiesEx([
      {
        propSet: [
          { type: "VirtualMachine", pathSet: [...VM_PATHS] },
          { type: "HostSystem", pathSet: ["name"] },
          { type: "Datastore", pathSet: ["name"] },
          ...(indexed === undefined ? [{ type: "ManagedEntity", pathSet: ["name", "parent"] }] : []),
        ],
        objectSet: [{ obj: ref, skip: false, selectSet: [...INFO_TRAVERSAL, ...(indexed === undefined ? [PARENT_CHAIN] : [])] }],
      },
    ]);
    const r = rs.find((o) => refKey(o.obj) === refKey(ref));
    if (!r) throw new IaasError("IAAS_NOT_FOUND", "The VM no longer exists in vCenter.");
    const missing = Object.values(r.missing)[0];
    if (missing) throw missing;
    const rec = parse(r);
    const s = rec.summary;
    let path = indexed;
    if (path === undefined) {
      try {
        path = inventoryPathFrom(this.client.serviceContent.rootFolder, ref, rs);
      } catch (err) {
        this.log.warn({ err, moref: ref.value }, "could not read the VM's inventory path; answering without it (folder protection will refuse)");
      }
    }
    const names = new Map<string, string>();
    for (const o of rs) if (o.obj.type !== "VirtualMachine" && typeof o.props.name === "string") names.set(refKey(o.obj), o.props.name);
    const unnamed = s.disks.flatMap((d) => (d.datastore && !names.has(refKey(d.datastore)) ? [d.datastore] : []));
    if (unnamed.length > 0) for (const [k, v] of await this.names(unnamed)) names.set(k, v);
    return {
      ...toContractSummary(rec, path),
      ...(s.guestFullName ? { guestOs: s.guestFullName } : {}),
      ...(s.ipAddress ? { ipAddress: s.ipAddress } : {}),
      ...(s.toolsRunningStatus ? { toolsStatus: s.toolsRunningStatus } : {}),
      ...(s.host && names.get(refKey(s.host)) ? { host: names.get(refKey(s.host))! } : {}),
      datastores: s.datastores.map((d) => names.get(refKey(d)) ?? d.value),
      disks: s.disks.map((d) => {
        const ds = d.datastore ? names.get(refKey(d.datastore)) : d.fileName ? /^\[([^\]]+)\]/.exec(d.fileName)?.[1] : undefined;
        return { label: d.label ?? `disk ${d.key}`, capacityGB: round(d.capacityInKB / (1024 * 1024)), ...(ds ? { datastore: ds } : {}), ...(d.fileName ? { file: d.fileName } : {}) };
      }),
      cpuHotAddEnabled: s.cpuHotAddEnabled,
      memoryHotAddEnabled: s.memoryHotAddEnabled,
      ...(s.annotation ? { annotation: s.annotation } : {}),
      ...(rec.requestId ? { createdBy: rec.requestId } : {}),
    };
  }

  async infoOf(vm: string): Promise<VmInfo> {
    return this.readByName(vm, (ref) => this.info(ref));
  }

  /** Names of managed objects, in one round trip. */
  async names(refs: MoRef[]): Promise<Map<string, string>> {
    const unique = [...new Map(refs.map((r) => [refKey(r), r])).values()];
    if (!unique.length) return new Map();
    const rs = await this.client.retrieve(unique, ["name"]);
    return new Map(rs.map((r) => [refKey(r.obj), String(r.props.name ?? r.obj.value)]));
  }

  /**
   * The VMs (and, when asked, templates) a `/iaas list` shows, sorted by name: the first `limit`
   * of the matches and how many match. `scope`: only VMs owned by `scope.owner` or whose team is in
   * `scope.teams`; `glob`: only names matching it (case-insensitive).
   *
   * Bounded by what it returns, not by the inventory: from the live index's list view (ListView:
   * a page of all is a slice of its order, a scope visits the scope's VMs, a pattern with a
   * literal prefix the names with it; no call to vCenter); without the index (still being built, feed lost), the VMs' references, then their facts read
   * LIST_PAGE VMs at a time, each page dropped once its matches are counted. The answer stops at
   * VM_LIST_MAX_BYTES of JSON; a request without `limit` whose matches do not fit is refused.
   */
  async list(q: ListQuery = {}): Promise<{ vms: VmSummary[]; total: number }> {
    try {
      const keys = await this.fields();
      const limit = q.limit ?? VM_LIST_MAX_VMS;
      const glob = q.glob === undefined ? undefined : compileGlob(q.glob, { caseInsensitive: true });
      const wanted = listWanted({ ...q, glob });
      let first: { items: VmSummary[]; total: number };
      if (this.index?.live) {
        // The index holds custom values only: an owner still in version 1's extraConfig only
        // counts once the start-up migration has copied it (as for vm-usage).
        const page = this.listView(keys).page({ ...q, glob }, limit);
        first = { items: page.items.map((v) => indexedSummary(v, keys)), total: page.total };
      } else {
        const sel = new FirstByName<VmRecord>(limit);
        await this.client.propertyCollector.eachInContainer("VirtualMachine", VM_BRIEF_PATHS, this.listPage, (objects) => {
          for (const r of objects) {
            if (r.props[VmProps.name] === undefined) continue;
            const rec = parseVmRecord(r, keys);
            if (wanted({ name: rec.summary.name, template: rec.summary.template, ...rec })) sel.offer(rec.summary.name, rec.summary.ref.value, rec);
          }
        });
        first = sel.map((r) => toContractSummary(r));
      }
      const vms: VmSummary[] = [];
      let bytes = 0;
      for (const v of first.items) {
        bytes += Buffer.byteLength(JSON.stringify(v)) + 1;
        if (bytes > VM_LIST_MAX_BYTES) break;
        vms.push(v);
      }
      if (q.limit === undefined && vms.length < first.total) {
        throw new IaasError(
          "IAAS_TOO_LARGE",
          `${first.total} VMs match, more than one answer holds (at most ${vms.length === first.items.length ? VM_LIST_MAX_VMS : vms.length}); ask with a limit, or narrow the list with a pattern or a scope.`,
        );
      }
      return { vms, total: first.total };
    } catch (err) {
      throw toIaasError(err, { action: "list VMs" });
    }
  }

  async templates(): Promise<TemplateInfo[]> {
    try {
      const parse = await this.parser();
      // Templates are few and VMs may be tens of thousands: the templates' references first (from
      // the live index's list view, or the template flag read LIST_PAGE VMs at a time), then the templates
      // alone read whole. Reading every VM's facts at once does not fit the heap at 10,000 VMs.
      const refs: MoRef[] = [];
      if (this.index?.live) {
        for (const v of this.listView(await this.fields()).templateEntries()) refs.push(v.ref);
      } else {
        await this.client.propertyCollector.eachInContainer("VirtualMachine", [VmProps.template], this.listPage, (objects) => {
          for (const r of objects) if (r.props[VmProps.template] === true) refs.push(r.obj);
        });
      }
      const rs = await this.readPresent(refs, VM_PATHS);
      // The index may be a moment behind: what is no longer a template is left out.
      const templates = rs.filter((r) => r.props[VmProps.template] === true && r.props[VmProps.name] !== undefined).map(parse);
      const paths = await Promise.all(templates.map((t) => this.pathOf(t.summary.ref)));
      return templates
        .map((t, i) => ({
          name: t.summary.name,
          ...(paths[i] ? { path: paths[i] } : {}),
          moref: t.summary.ref.value,
          ...(t.summary.guestFullName ? { guestOs: t.summary.guestFullName } : {}),
          numCpu: t.summary.numCPU ?? 0,
          memoryMB: t.summary.memoryMB ?? 0,
        }))
        .sort((a, b) => a.name.localeCompare(b.name));
    } catch (err) {
      throw toIaasError(err, { action: "list templates" });
    }
  }

  /** These objects' properties, LIST_PAGE at a time; one deleted meanwhile is left out. */
  private async readPresent(refs: readonly MoRef[], paths: readonly string[]): Promise<ObjectProps[]> {
    const out: ObjectProps[] = [];
    const gone = (err: unknown): ObjectProps[] => {
      if (isVimFault(err, "ManagedObjectNotFound")) return [];
      throw err;
    };
    for (let i = 0; i < refs.length; i += this.listPage) {
      const part = refs.slice(i, i + this.listPage);
      const page = await this.client.retrieve(part, paths).catch(async (err: unknown) => {
        gone(err);
        const one: ObjectProps[] = [];
        for (const ref of part) one.push(...(await this.client.retrieve([ref], paths).catch(gone)));
        return one;
      });
      out.push(...page);
    }
    return out;
  }

  async datastores(): Promise<DatastoreInfo[]> {
    try {
      const [ds, hosts] = await Promise.all([listDatastores(this.client), listHosts(this.client)]);
      // Which hosts reach a datastore, from each host's own datastore list: the simulator's
      // Datastore.host lists only one host of several that mount it.
      const reach = new Map<string, string[]>();
      for (const h of hosts) {
        if (h.connectionState && h.connectionState !== "connected") continue;
        for (const d of h.datastores) reach.set(refKey(d), [...(reach.get(refKey(d)) ?? []), h.name]);
      }
      const gb = (b: number) => round(b / 1024 ** 3);
      return ds
        .map((d) => ({
          name: d.name,
          moref: d.ref.value,
          capacityGB: gb(d.capacity),
          freeGB: gb(d.freeSpace),
          accessible: d.accessible,
          ...(d.type ? { type: d.type } : {}),
          hosts: (reach.get(refKey(d.ref)) ?? []).sort(),
        }))
        .sort((a, b) => a.name.localeCompare(b.name));
    } catch (err) {
      throw toIaasError(err, { action: "list datastores" });
    }
  }

  /** VMs whose files are on a datastore (templates excluded: they are not moved). */
  async datastoreVms(datastore: string): Promise<VmSummary[]> {
    try {
      const ds = (await listDatastores(this.client)).find((d) => d.name === datastore);
      if (!ds) throw new IaasError("IAAS_NOT_FOUND", `No datastore named \`${datastore}\`.`);
      const parse = await this.parser();
      const rs = await this.client.retrieveContainer("VirtualMachine", VM_PATHS);
      return rs
        .map(parse)
        .filter((r) => !r.summary.template && r.summary.datastores.some((d) => refKey(d) === refKey(ds.ref)))
        .map((r) => toContractSummary(r))
        .sort((a, b) => a.name.localeCompare(b.name));
    } catch (err) {
      throw toIaasError(err, { action: "list the datastore's VMs" });
    }
  }

  /**
   * Runs a power action and returns the VM as it is afterwards. Checks vCenter would make on a
   * real host but the simulator skips are made here (suspend of a powered-off VM, guest operations
   * without VMware Tools), so users see the same answer on both.
   */
  async power(vm: string, action: PowerAction, timeoutMs: number): Promise<VmSummary> {
    return this.withVm(vm, "any", (found) => this.powerFound(vm, found, action, timeoutMs));
  }

  /**
   * Starts a task and reads its state and the VM's brief facts in one round trip; a task still
   * running then is waited for through a collector. On the simulator, and for vCenter's quick
   * tasks, that is the task's method and one read: as many calls as the bare task and its wait.
   */
  private async taskWithFacts(start: Promise<Task>, ref: MoRef, timeoutMs: number): Promise<VmSummary> {
    const parse = await this.parser();
    const task = await start;
    const rs = await this.client.propertyCollector.retrievePropertiesEx([
      {
        propSet: [
          { type: "Task", pathSet: [...TASK_STATE_PATHS] },
          { type: ref.type, pathSet: [...VM_BRIEF_PATHS] },
        ],
        objectSet: [
          { obj: task.ref, skip: false },
          { obj: ref, skip: false },
        ],
      },
    ]);
    const t = rs.find((r) => r.obj.type === "Task");
    const v = rs.find((r) => refKey(r.obj) === refKey(ref));
    const unread = [t, v].flatMap((r) => (r ? Object.values(r.missing) : []))[0];
    if (unread) throw unread;
    const now = task.outcome(t?.props ?? {});
    if (!now.done) await task.wait({ timeoutMs, firstRead: false });
    const [rec, path] = await Promise.all([v ? parse(v) : this.record(ref, VM_BRIEF_PATHS), this.pathOf(ref)]);
    return toContractSummary(rec, path);
  }

  private async powerFound(vm: string, found: FoundVm, action: PowerAction, timeoutMs: number): Promise<VmSummary> {
    const ctx = { vm: found.name, action: ACTION_WORDS[action] };
    const isTemplate = () => new IaasError("IAAS_INVALID_STATE", `\`${found.name}\` is a template; deploy it to get a VM you can power on.`);
    try {
      const vmo = new VirtualMachine(this.client, found.ref);
      // on, off and reset need nothing of the VM but that it is not a template, which a look-up
      // by the live index already says; the others depend on its state and read it first.
      const needsState = action === "suspend" || action === "shutdown" || action === "reboot" || !found.indexed;
      if (!needsState && found.template) throw isTemplate();
      const before = needsState ? await vmo.summary() : undefined;
      if (before) this.checkName(found, vm, before.name);
      if (before?.template) throw isTemplate();
      // What a power action does not change (name, size, owner, path) is read with the task's state
      // (or, for the guest operations, while they run); the power state in the answer is the one the
      // finished action brought the VM to.
      let facts: Promise<VmSummary> | undefined;
      switch (action) {
        case "on":
          facts = this.taskWithFacts(vmo.powerOn(), found.ref, timeoutMs);
          break;
        case "off":
          facts = this.taskWithFacts(vmo.powerOff(), found.ref, timeoutMs);
          break;
        case "reset":
          facts = this.taskWithFacts(vmo.reset(), found.ref, timeoutMs);
          break;
        case "suspend":
          if (before!.powerState !== "poweredOn") throw new IaasError("IAAS_INVALID_POWER_STATE", `Cannot suspend: \`${found.name}\` is ${words(before!.powerState)}.`);
          facts = this.taskWithFacts(vmo.suspend(), found.ref, timeoutMs);
          break;
        case "shutdown":
        case "reboot":
          if (before!.powerState !== "poweredOn") throw new IaasError("IAAS_INVALID_POWER_STATE", `Cannot ${ctx.action}: \`${found.name}\` is ${words(before!.powerState)}.`);
          if (before!.toolsRunningStatus !== "guestToolsRunning") {
            throw new IaasError("IAAS_TOOLS_UNAVAILABLE", `Cannot ${ctx.action} \`${found.name}\`: VMware Tools is not running in it. Use \`power ${action === "shutdown" ? "off" : "reset"}\` instead.`);
          }
          facts = this.summary(found.ref);
          facts.catch(() => undefined); // a failed guest operation is the error to report
          if (action === "shutdown") {
            await vmo.shutdownGuest();
            // ShutdownGuest returns once the guest was asked; success means the VM is off.
            await this.client.propertyCollector.waitFor(found.ref, [VmProps.powerState], (p) => p[VmProps.powerState] === "poweredOff", Date.now() + timeoutMs);
          } else {
            // Never fall back to a hard reset: a reboot through Tools or a clear "not supported".
            await vmo.rebootGuest();
          }
          break;
      }
      const after = await facts!;
      const state = PowerStateAfter[action];
      return state ? { ...after, powerState: state } : after;
    } catch (err) {
      if (isStale(err, found)) throw err;
      throw toIaasError(err, ctx);
    }
  }
}

export function words(state: string): string {
  return (PowerStateWords as Record<string, string>)[state] ?? state;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

export function toContractSummary(rec: VmRecord, path?: string): VmSummary {
  const s = rec.summary;
  return {
    name: s.name,
    ...(path ? { path } : {}),
    moref: s.ref.value,
    powerState: s.powerState,
    numCpu: s.numCPU ?? 0,
    memoryMB: s.memoryMB ?? 0,
    template: s.template,
    ...(rec.owner ? { owner: rec.owner } : {}),
    ...(rec.team ? { team: rec.team } : {}),
    ...(rec.snapshots !== undefined ? { snapshots: rec.snapshots } : {}),
    ...leaseOf(rec.lease),
  };
}
