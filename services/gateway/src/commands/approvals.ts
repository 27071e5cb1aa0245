import type { ApprovalRecord } from "@iaas/contracts";
import { APPROVE_ACTION, REJECT_ACTION } from "../listeners/approvals.js";
import { button, context, section, type Block, MAX_BLOCKS } from "../presentation/blocks.js";
import { code } from "../presentation/mrkdwn.js";
import type { RecordOf } from "./verb.js";

const at = (iso: string) => `<!date^${Math.floor(Date.parse(iso) / 1000)}^{date_short_pretty} {time}|${iso}>`;
/** Shown at most, per list (each request to decide takes two blocks). */
const MAX_SHOWN = 15;

/**
 * `/iaas approvals`: what waits for the caller, as requester and as approver. Requests they may
 * decide carry the Approve / Reject buttons of the card (the same action ids: the same checks),
 * so approvals work without a card channel too.
 */
export const approvals: RecordOf<"approvals"> = {
  kind: "remote",
  ids: ["approvals"],
  answer: async (_cmd, { actor, approvals: desk }) => {
    const { asked, toDecide } = await desk.pendingFor(actor);
    const line = (r: ApprovalRecord) => `${r.summary} · rule ${code(r.rule)} · expires ${at(r.expiresAt)} · request ${code(r.command.id)}`;
    const blocks: Block[] = [];
    const text: string[] = [];
    if (toDecide.length) {
      blocks.push(section(`*Waiting for your decision (${toDecide.length})*`));
      text.push(`Waiting for your decision: ${toDecide.length}`);
      for (const r of toDecide.slice(0, MAX_SHOWN)) {
        blocks.push(section(`<@${r.requester}>: ${line(r)}`));
        blocks.push({ type: "actions", block_id: `approval-list-${r.id}`, elements: [button(APPROVE_ACTION, "Approve", r.id, "primary"), button(REJECT_ACTION, "Reject", r.id, "danger")] });
      }
    }
    if (asked.length) {
      blocks.push(section(`*Your requests waiting for approval (${asked.length})*`));
      text.push(`Your requests waiting for approval: ${asked.length}`);
      for (const r of asked.slice(0, MAX_SHOWN)) blocks.push(section(`${line(r)}\nWaits for ${r.approvers}`));
    }
    if (!blocks.length) {
      const none = "Nothing waits for an approval: no request of yours, and none for you to decide.";
      return { response_type: "ephemeral", text: none, blocks: [section(none)] };
    }
    if (toDecide.length > MAX_SHOWN || asked.length > MAX_SHOWN) blocks.push(context(`Showing the oldest ${MAX_SHOWN} of each.`));
    return { response_type: "ephemeral", text: text.join("; "), blocks: blocks.slice(0, MAX_BLOCKS) };
  },
};
