import { IaasError, LeaseCommandSchema, ProxyEndpoints, formatDuration } from "@iaas/contracts";
import { fields, section } from "../presentation/blocks.js";
import { code, escape } from "../presentation/mrkdwn.js";
import { leaseWords } from "../presentation/views.js";
import type { ParsedCommand } from "./parse.js";
import type { ActionVerb, RecordOf } from "./verb.js";

type LeaseCmd = Extract<ParsedCommand, { verb: "lease" }>;

/**
 * `/iaas lease <vm>`: when the lease ends, the time left and what happens then. One verb, two
 * records: `lease <vm> set 30d` and `lease <vm> none` change the lease (admins: `lease.set`) and
 * are the action `leaseSet` (verbs.ts picks it by the command's form).
 */
export const lease: RecordOf<"lease"> = {
  kind: "remote",
  ids: ["lease", "lease.set"],
  grants: (cmd) => (cmd.set === undefined ? ["lease"] : ["lease.set"]),
  vm: (cmd) => cmd.vm,
  answer: async (cmd, { ask, policy, actorOn, now }) => {
    const { vm } = await ask(ProxyEndpoints.vmGet, { vm: cmd.vm });
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

/** `lease <vm> set <duration>` / `lease <vm> none` (admins): the action form of `lease`. */
export const leaseSet: ActionVerb<LeaseCmd> = {
  kind: "action",
  ids: ["lease.set"],
  label: () => "lease.set",
  vm: (cmd) => cmd.vm,
  precheck: (policy) => {
    if (!policy.leases.enabled) throw new IaasError("IAAS_INVALID_ARGUMENT", "Leases are off in this policy: there is no lease to set.");
  },
  target: (cmd) => ({ vm: cmd.vm, id: "lease.set" }),
  command: (cmd, base) => LeaseCommandSchema.parse({ ...base, area: "lease", action: "set", vm: cmd.vm, durationMs: cmd.set ?? null }),
  doing: (cmd) => (cmd.set === null || cmd.set === undefined ? `Removing the lease of ${code(cmd.vm)}` : `Setting the lease of ${code(cmd.vm)} to ${formatDuration(cmd.set)} from now`),
};
