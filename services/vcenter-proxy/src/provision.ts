import { IaasError, type Placement, type ProxyRequest, type VmSummary, type VmInfo } from "@iaas/contracts";
import { VirtualMachine, VmProps, type MoRef, type OptionValue, type VirtualMachineConfigSpec } from "@iaas/vsphere";
import { toIaasError } from "./faults.js";
import { resolvePlacement } from "./placement.js";
import { OWNER_KEY, REQUEST_KEY, VM_BRIEF_PATHS, VM_PATHS, leaseOf, toContractSummary, type Vcenter, words } from "./vcenter.js";

type Provenance = ProxyRequest<"vmCreate">["provenance"];

function provenanceConfig(p: Provenance): OptionValue[] {
  return [
    { key: OWNER_KEY, value: p.owner },
    { key: REQUEST_KEY, value: p.requestId },
  ];
}

/**
 * Gives a VM this proxy just made (or made in an earlier delivery of the same command) its owner
 * and team custom attributes, writes it through to the live index, and answers its summary. Safe
 * to repeat: a value already there is not set again. A request without a team clears one the VM
 * may have brought along from its source.
 */
async function claim(vc: Vcenter, ref: MoRef, p: Provenance): Promise<VmSummary> {
  const rec = await vc.record(ref, VM_PATHS);
  await vc.setOwnership(rec, { owner: p.owner, team: p.team ?? null });
  const after = { ...rec, owner: p.owner, ownerInField: true, team: p.team };
  await vc.noteVm(after);
  return toContractSummary(after, await vc.pathOf(ref));
}

/**
 * vCenter (and the simulator more so) will happily make two VMs of one name, and a redelivered
 * command must not. So before making a VM: one of that name made by the same request is the
 * answer (the earlier attempt got through, perhaps not as far as its owner); one made by anything
 * else is a duplicate.
 */
async function existing(vc: Vcenter, name: string, p: Provenance): Promise<VmSummary | undefined> {
  const all = await vc.client.retrieveContainer("VirtualMachine", [VmProps.name]);
  const hits = all.filter((o) => o.props[VmProps.name] === name);
  if (hits.length === 0) return undefined;
  for (const h of hits) {
    const rec = await vc.record(h.obj, VM_BRIEF_PATHS);
    if (rec.requestId === p.requestId) return claim(vc, h.obj, p);
  }
  throw new IaasError("IAAS_DUPLICATE_NAME", `A VM named \`${name}\` already exists. Choose another name.`);
}

export async function createVm(vc: Vcenter, req: ProxyRequest<"vmCreate">, defaultTimeoutMs: number): Promise<{ vm: VmSummary; created: boolean }> {
  const ctx = { vm: req.name, action: "create the VM" };
  try {
    const prior = await existing(vc, req.name, req.provenance);
    if (prior) return { vm: prior, created: false };
    const where = await resolvePlacement(vc, req.placement);
    const config: VirtualMachineConfigSpec = {
      name: req.name,
      guestId: req.guestId ?? "otherLinux64Guest",
      files: { vmPathName: `[${where.datastore.name}]` },
      numCPUs: req.cpu,
      memoryMB: req.memoryMB,
      deviceChange: [
        { operation: "add", device: { _type: "VirtualLsiLogicController", key: -100, busNumber: 0, sharedBus: "noSharing" } },
        {
          operation: "add",
          fileOperation: "create",
          device: {
            _type: "VirtualDisk",
            key: -101,
            controllerKey: -100,
            unitNumber: 0,
            capacityInKB: Math.round(req.diskGB * 1024 * 1024),
            backing: { _type: "VirtualDiskFlatVer2BackingInfo", fileName: "", diskMode: "persistent", thinProvisioned: true },
          },
        },
      ],
      extraConfig: provenanceConfig(req.provenance),
    };
    const task = await vc.client.folder(where.folder).createVM(config, where.pool);
    const ref = (await task.wait({ timeoutMs: req.timeoutMs ?? defaultTimeoutMs })) as MoRef;
    vc.log.info({ vm: req.name, moref: ref.value, requestId: req.provenance.requestId }, "created VM");
    return { vm: await claim(vc, ref, req.provenance), created: true };
  } catch (err) {
    throw toIaasError(err, ctx);
  }
}

export async function cloneVm(vc: Vcenter, req: ProxyRequest<"vmClone">, defaultTimeoutMs: number): Promise<{ vm: VmSummary; created: boolean }> {
  const source = await vc.findVm(req.source, req.sourceKind);
  const ctx = { vm: req.name, action: req.sourceKind === "template" ? "deploy the template" : "clone the VM" };
  try {
    const prior = await existing(vc, req.name, req.provenance);
    if (prior) return { vm: prior, created: false };
    // A template has no pool: vCenter needs one (InvalidArgument spec.location.pool otherwise).
    const where = await resolvePlacement(vc, req.placement, { datastore: req.placement?.datastore !== undefined || req.sourceKind === "template" });
    const config: VirtualMachineConfigSpec = { extraConfig: provenanceConfig(req.provenance) };
    const task = await new VirtualMachine(vc.client, source.ref).clone(where.folder, req.name, {
      location: { pool: where.pool, ...(where.datastore.name ? { datastore: where.datastore.ref } : {}) },
      template: false,
      powerOn: false,
      config,
    });
    const ref = (await task.wait({ timeoutMs: req.timeoutMs ?? defaultTimeoutMs })) as MoRef;
    vc.log.info({ vm: req.name, source: source.name, moref: ref.value, requestId: req.provenance.requestId }, "cloned VM");
    // The size as a reconfigure of the powered-off clone rather than in the clone spec: vcsim
    // ignores the clone spec's CPU and memory; vCenter gives the same result either way.
    const size: VirtualMachineConfigSpec = {};
    if (req.cpu !== undefined) size.numCPUs = req.cpu;
    if (req.memoryMB !== undefined) size.memoryMB = req.memoryMB;
    if (size.numCPUs !== undefined || size.memoryMB !== undefined) {
      await (await new VirtualMachine(vc.client, ref).reconfigure(size)).wait({ timeoutMs: req.timeoutMs ?? defaultTimeoutMs });
    }
    if (req.powerOn) {
      // Separate from the clone: vcsim ignores spec.powerOn, and vCenter's answer is the same either way.
      await (await new VirtualMachine(vc.client, ref).powerOn()).wait({ timeoutMs: req.timeoutMs ?? defaultTimeoutMs });
    }
    return { vm: await claim(vc, ref, req.provenance), created: true };
  } catch (err) {
    throw toIaasError(err, ctx);
  }
}

export async function destroyVm(vc: Vcenter, req: ProxyRequest<"vmDestroy">, defaultTimeoutMs: number): Promise<{ name: string; destroyed: boolean }> {
  let found;
  try {
    found = await vc.findVm(req.vm, "any");
  } catch (err) {
    // Gone already (a redelivered delete whose first attempt got through): nothing to do.
    if (err instanceof IaasError && err.code === "IAAS_VM_NOT_FOUND") return { name: req.vm, destroyed: false };
    throw err;
  }
  const ctx = { vm: found.name, action: "delete the VM" };
  const timeoutMs = req.timeoutMs ?? defaultTimeoutMs;
  try {
    const vm = new VirtualMachine(vc.client, found.ref);
    if (req.expect) {
      // The lease keeper's delete: only the very VM it decided on, with the very lease that ended.
      const rec = await vc.record(found.ref, VM_BRIEF_PATHS);
      const lease = leaseOf(rec.lease).leaseExpires;
      if (found.ref.value !== req.expect.moref || lease !== new Date(req.expect.leaseExpires).toISOString()) {
        throw new IaasError("IAAS_INVALID_STATE", `\`${found.name}\` changed since its lease ended (${lease ? `its lease now ends ${lease}` : "it has no lease now"}); it was not deleted.`);
      }
    }
    const s = await vm.summary();
    if (s.powerState !== "poweredOff") {
      if (!req.powerOffFirst) throw new IaasError("IAAS_INVALID_POWER_STATE", `Cannot delete: \`${found.name}\` is ${words(s.powerState)}. Power it off first.`);
      await (await vm.powerOff()).wait({ timeoutMs });
    }
    await (await vm.destroy()).wait({ timeoutMs });
    vc.index?.forget(found.ref);
    vc.log.info({ vm: found.name, moref: found.ref.value }, "destroyed VM");
    return { name: found.name, destroyed: true };
  } catch (err) {
    throw toIaasError(err, ctx);
  }
}

/**
 * CPU and memory changes as vCenter allows them: a powered-off VM takes anything; a powered-on VM
 * only increases, and only with hot-add enabled for that resource, memory within the hot-plug
 * limit and in its increment. The simulator enforces none of this, so it is checked here.
 */
export async function reconfigureVm(vc: Vcenter, req: ProxyRequest<"vmReconfigure">, defaultTimeoutMs: number): Promise<{ vm: VmInfo; changed: boolean }> {
  const found = await vc.findVm(req.vm, "vm");
  const ctx = { vm: found.name, action: "resize the VM" };
  try {
    const rec = await vc.record(found.ref);
    const s = rec.summary;
    const cpu = req.cpu !== undefined && req.cpu !== s.numCPU ? req.cpu : undefined;
    const mem = req.memoryMB !== undefined && req.memoryMB !== s.memoryMB ? req.memoryMB : undefined;
    if (cpu === undefined && mem === undefined) return { vm: await vc.info(found.ref), changed: false };
    if (s.powerState !== "poweredOff") {
      const name = `\`${found.name}\``;
      if (cpu !== undefined && cpu < (s.numCPU ?? 0)) throw new IaasError("IAAS_INVALID_POWER_STATE", `Cannot remove vCPUs while ${name} is ${words(s.powerState)}; power it off first.`);
      if (mem !== undefined && mem < (s.memoryMB ?? 0)) throw new IaasError("IAAS_INVALID_POWER_STATE", `Cannot remove memory while ${name} is ${words(s.powerState)}; power it off first.`);
      if (cpu !== undefined && !s.cpuHotAddEnabled) throw new IaasError("IAAS_HOT_ADD_DISABLED", `${name} is ${words(s.powerState)} and CPU hot-add is off: power it off to change its vCPUs, or ask an IT admin to enable CPU hot-add.`);
      if (mem !== undefined && !s.memoryHotAddEnabled) throw new IaasError("IAAS_HOT_ADD_DISABLED", `${name} is ${words(s.powerState)} and memory hot-add is off: power it off to change its memory, or ask an IT admin to enable memory hot-add.`);
      if (mem !== undefined && rec.hotPlugMemoryLimitMB && mem > rec.hotPlugMemoryLimitMB) {
        throw new IaasError("IAAS_LIMIT_EXCEEDED", `${name} can take at most ${rec.hotPlugMemoryLimitMB} MB while running (its hot-plug limit); power it off for more.`);
      }
      if (mem !== undefined && rec.hotPlugMemoryIncrementMB && (mem - (s.memoryMB ?? 0)) % rec.hotPlugMemoryIncrementMB !== 0) {
        throw new IaasError("IAAS_INVALID_ARGUMENT", `${name} adds memory in steps of ${rec.hotPlugMemoryIncrementMB} MB while running.`);
      }
    }
    const spec: VirtualMachineConfigSpec = {};
    if (cpu !== undefined) spec.numCPUs = cpu;
    if (mem !== undefined) spec.memoryMB = mem;
    const vm = new VirtualMachine(vc.client, found.ref);
    await (await vm.reconfigure(spec)).wait({ timeoutMs: req.timeoutMs ?? defaultTimeoutMs });
    vc.log.info({ vm: found.name, cpu, memoryMB: mem }, "reconfigured VM");
    // The new size counts in vm-usage at once, whether or not the feed has reported it yet.
    if (vc.index) await vc.noteVm(await vc.record(found.ref));
    return { vm: await vc.info(found.ref), changed: true };
  } catch (err) {
    throw toIaasError(err, ctx);
  }
}

/** Storage vMotion of the whole VM to a datastore its host can reach. Already there: `moved: false`. */
export async function relocateVm(vc: Vcenter, req: ProxyRequest<"vmRelocate">, defaultTimeoutMs: number): Promise<{ vm: VmInfo; moved: boolean }> {
  const found = await vc.findVm(req.vm, "vm");
  const ctx = { vm: found.name, action: "move the VM" };
  try {
    const rec = await vc.record(found.ref);
    const dss = await vc.datastores();
    const target = dss.find((d) => d.name === req.datastore);
    if (!target) throw new IaasError("IAAS_NOT_FOUND", `No datastore named \`${req.datastore}\`.`);
    const current = await vc.names(rec.summary.datastores);
    if (rec.summary.datastores.length === 1 && current.get(`${rec.summary.datastores[0]!.type}:${rec.summary.datastores[0]!.value}`) === req.datastore) {
      return { vm: await vc.info(found.ref), moved: false };
    }
    if (rec.summary.host) {
      const hostName = (await vc.names([rec.summary.host])).values().next().value;
      if (hostName && !target.hosts.includes(hostName)) throw new IaasError("IAAS_INVALID_ARGUMENT", `Datastore \`${req.datastore}\` is not reachable from \`${found.name}\`'s host \`${hostName}\`.`);
    }
    const task = await new VirtualMachine(vc.client, found.ref).relocate({ datastore: { type: "Datastore", value: target.moref } });
    await task.wait({ timeoutMs: req.timeoutMs ?? defaultTimeoutMs });
    vc.log.info({ vm: found.name, datastore: req.datastore }, "relocated VM");
    return { vm: await vc.info(found.ref), moved: true };
  } catch (err) {
    throw toIaasError(err, ctx);
  }
}

export type { Placement };
