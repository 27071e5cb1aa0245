/**
 * Slack mrkdwn helpers. Slack wants `&`, `<` and `>` escaped in message text; unescaped, `<!here>`
 * or `<https://...|...>` in a VM name or an error message would become a mention or a link.
 * https://api.slack.com/reference/surfaces/formatting#escaping
 */
export function escape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/**
 * Text as inline code in a message that is escaped later as a whole (an error's message, which
 * `errorText` escapes): the backticks only, a backtick inside becoming a quote.
 */
export function plainCode(s: string): string {
  return `\`${s.replace(/`/g, "'")}\``;
}

/**
 * Escaped text (`escape`) with the user and user group mentions the gateway itself wrote
 * (`<@U012ABC>`, `<!subteam^S012ABC>`, well-formed ids only, outside inline code) turned back
 * into mentions: a refusal names whose VM it is. `<!channel>`, `<!here>`, links and anything
 * inside backticks (names typed by users) stay text.
 */
export function escapeKeepingMentions(s: string): string {
  return escape(s)
    .split("`")
    .map((part, i) => (i % 2 === 1 ? part : part.replace(/&lt;(@[UW][A-Z0-9]{2,20}|!subteam\^S[A-Z0-9]{2,20})&gt;/g, "<$1>")))
    .join("`");
}

/** Text as inline code. A backtick would end the span, so it becomes a quote. */
export function code(s: string): string {
  return `\`${escape(s.replace(/`/g, "'"))}\``;
}
