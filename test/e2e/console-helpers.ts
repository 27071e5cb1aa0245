/** Helpers for driving the web console in headless Chromium (console.test.ts, console-views.test.ts). */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Locator, type Page } from "playwright-core";
import type { SlackStandIn } from "@iaas/testkit";

export const CHROMIUM = "/usr/bin/chromium";

/** Debian's chromium, headless, with a fresh profile; `close` removes the profile. */
export async function launchBrowser(): Promise<{ browser: BrowserContext; page: Page; close: () => Promise<void> }> {
  if (!existsSync(CHROMIUM)) throw new Error(`no ${CHROMIUM}: scripts/setup.sh installs Debian's chromium`);
  const profile = mkdtempSync(join(tmpdir(), "iaas-chromium-"));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1100, height: 900 },
  });
  const page = browser.pages()[0] ?? (await browser.newPage());
  return {
    browser,
    page,
    close: async () => {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** A Web API call as the gateway makes it with its bot token: form-encoded, objects as JSON strings (Slack's own client does so). */
export async function botCall(slack: SlackStandIn, method: string, args: Record<string, unknown>): Promise<Record<string, any>> {
  const form = new URLSearchParams(Object.entries(args).map(([k, v]): [string, string] => [k, typeof v === "string" ? v : JSON.stringify(v)]));
  const res = await fetch(`${slack.apiUrl}${method}`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", authorization: "Bearer local-bot-token" }, body: form.toString() });
  return (await res.json()) as Record<string, any>;
}

/** The open modal dialog titled `title`. */
export function modalOf(page: Page, title: string): Locator {
  return page.getByRole("dialog", { name: title });
}

