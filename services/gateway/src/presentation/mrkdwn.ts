/**
 * Slack mrkdwn helpers. Slack wants `&`, `<` and `>` escaped in message text; unescaped, `<!here>`
 * or `<https://...|...>` in a VM name or an error message would become a mention or a link.
 * https://api.slack.com/reference/surfaces/formatting#escaping
 */
export function escape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Text as inline code. A backtick would end the span, so it becomes a quote. */
export function code(s: string): string {
  return `\`${escape(s.replace(/`/g, "'"))}\``;
}
