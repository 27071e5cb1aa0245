import { code } from "../presentation/mrkdwn.js";

/** ` in vCenter \`b\``: what a message adds for a command that named a vCenter (`vc=`); nothing without one, as before there were several. */
export function inWords(vcenter: string | undefined): string {
  return vcenter === undefined ? "" : ` in vCenter ${code(vcenter)}`;
}
