import { IaasError, LeaseCommandSchema, MAX_DURATION_MS, ProxyEndpoints, formatDuration } from "@iaas/contracts";
import { fields, section } from "../presentation/blocks.js";
import { code, escape } from "../presentation/mrkdwn.js";
import { leaseWords } from "../presentation/views.js";
import type { ParsedCommand } from "./parse.js";
import { inVcenter } from "@iaas/runtime";
import { inWords } from "./vcenter.js";
import type { ActionVerb, QueryVerb, RecordOf } from "./verb.js";

type LeaseCmd = Extract<ParsedCommand, { verb: "lease" }>;

/** `/iaas lease <vm>`: when the lease ends, the time left and what happens then. */
const show: QueryVerb<LeaseCmd> = {
  kind: "remote",
  ids: ["lease"],
  vm: (cmd) => cmd.vm,
  answer: async (cmd, { ask, policy, actorOn, now }) => {
    const { vm } = await ask(ProxyEndpoints.vmGet, { vm: cmd.vm, ...inVcenter(cmd.vcenter) });
    policy.authorizeOn(actorOn(vm.team), "lease", vm);
    if (vm.template) throw new IaasError("IAAS_INVALID_ARGUMENT", `\`${vm.name}\` is a template: templates have no lease.`);
    const l = policy.leases;
    const words = leaseWords(vm, now())!;
    const then = !l.enabled
      ? "Leases are off in this policy: nothing happens at its end."
      : vm.leaseExpires
        ? `At its end it is powered off; ${policy.protectionOf(vm.name, vm.path) !== undefined || l.afterGrace === "keep" ? "it is then kept" : `${formatDuration(l.grace)} later it is deleted`}. \`/iaas extend ${vm.name}\` moves the end to ${formatDuration(l.default)} from now.`
        : "It stays until someone deletes it.";
    const text = `${escape(vm.name)}: lease ${words}. ${then}`;
    return { text, blocks: [section(`*${escape(vm.name)}* · lease`), ...fields([["Lease", words], ["Then", then]])] };
  },
};

/** The lease asked for, from `issuedAt` (the command's) or now: the duration typed, or the time to the date typed. */
function lengthOf(cmd: LeaseCmd, from: number): number {
  if (cmd.until === undefined) return cmd.set!;
  const ms = Date.parse(cmd.until) - from;
  if (ms < 1000) throw new IaasError("IAAS_INVALID_ARGUMENT", `${code(cmd.until)} is not in the future: a lease ends after now.`);
  if (ms > MAX_DURATION_MS) throw new IaasError("IAAS_INVALID_ARGUMENT", `${code(cmd.until)} is more than 10 years from now.`);
  return ms;
}

const setWords = (cmd: LeaseCmd) => (cmd.until !== undefined ? `to end ${cmd.until.slice(0, 16).replace("T", " ")} UTC` : `to ${formatDuration(cmd.set!)} from now`);

/** What both forms of `lease <vm> set|none` share: one command id, its grants, its label and the leases check. */
function setCommon(): Pick<ActionVerb<LeaseCmd>, "kind" | "ids" | "grants" | "label" | "vm" | "precheck"> {
  return {
    kind: "action",
    ids: ["lease.set"],
    grants: (cmd) => (cmd.set === null ? ["lease.set"] : ["lease.set", "lease.extend"]),
    label: () => "lease.set",
    vm: (cmd) => cmd.vm,
    precheck: (policy) => {
      if (!policy.leases.enabled) throw new IaasError("IAAS_INVALID_ARGUMENT", "Leases are off in this policy: there is no lease to set.");
    },
  };
}

/**
 * `lease <vm> set <duration|date>` and `lease <vm> none` with `lease.set` (IT admins by
 * default): any length, none too, on any VM its scope reaches; lease-keeper checks it again.
 */
const setByAdmin: ActionVerb<LeaseCmd> = {
  ...setCommon(),
  target: (cmd) => ({ vm: cmd.vm, id: "lease.set" }),
  command: (cmd, base) => LeaseCommandSchema.parse({ ...base, ...inVcenter(cmd.vcenter), area: "lease", action: "set", vm: cmd.vm, durationMs: cmd.set === null ? null : lengthOf(cmd, Date.parse(base.issuedAt)) }),
  doing: (cmd) => (cmd.set === null ? `Removing the lease of ${code(cmd.vm)}${inWords(cmd.vcenter)}` : `Setting the lease of ${code(cmd.vm)}${inWords(cmd.vcenter)} ${setWords(cmd)}`),
  runAs: (cmd, { policy, actor }) => (cmd.set !== null && !policy.can(actor, "lease.set") && policy.can(actor, "lease.extend") ? setByOwner : setByAdmin),
};

/**
 * `lease <vm> set <duration|date>` by someone with `lease.extend` only (the owner and the team by
 * default): an extend to that length, governed as `/iaas extend` is (their VMs, a VM with a
 * lease, longer than `leases.max` only with an approval). Removing a lease needs `lease.set`.
 */
const setByOwner: ActionVerb<LeaseCmd> = {
  ...setCommon(),
  target: (cmd) => ({ vm: cmd.vm, id: "lease.extend" }),
  approvalFacts: (cmd) => ({ command: "lease.extend", vm: cmd.vm, leaseMs: lengthOf(cmd, Date.now()) }),
  command: (cmd, base) => LeaseCommandSchema.parse({ ...base, ...inVcenter(cmd.vcenter), area: "lease", action: "extend", vm: cmd.vm, durationMs: lengthOf(cmd, Date.parse(base.issuedAt)) }),
  doing: (cmd) => `Setting the lease of ${code(cmd.vm)}${inWords(cmd.vcenter)} ${setWords(cmd)}`,
};

/**
 * `/iaas lease <vm>` shows the lease; `lease <vm> set <duration|date>` and `lease <vm> none`
 * change it: `lease.set` sets any lease (admins by default), `lease.extend` alone sets one as an
 * extend would (owners, within the max), and only `lease.set` removes one.
 */
export const lease: RecordOf<"lease"> = {
  kind: "split",
  ids: ["lease", "lease.set"],
  of: (cmd) => (cmd.set === undefined && cmd.until === undefined ? show : setByAdmin),
};
