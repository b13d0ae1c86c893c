// Shared by the browser tests: headless Chromium (Debian's `chromium` package) driven by
// playwright-core, with the flags of ../../shared/TOOLING.md and a fresh profile each time.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The browser: `CHROMIUM` if set, else Debian's /usr/bin/chromium. */
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/** Why the browser tests cannot run here, or false when they can. */
export const skipBrowser = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium) or set CHROMIUM`;

/** The bound of every browser wait (ms). */
export const BROWSER_WAIT = 10000;

const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * A headless browser with a fresh profile; `close()` ends it and removes the profile.
 * @returns {Promise<{ context: import('playwright-core').BrowserContext, close(): Promise<void> }>}
 */
export async function launch({ viewport = { width: 900, height: 700 } } = {}) {
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'realtime-e2e-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport,
    timeout: BROWSER_WAIT,
  });
  context.setDefaultTimeout(BROWSER_WAIT);
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** The member keys `<realtime-users key="KEY">` lists on `page`, sorted. */
export function usersShown(page, key) {
  return page.evaluate((key) => {
    const element = document.querySelector(`realtime-users[key="${key}"]`);
    return [...(element?.shadowRoot?.querySelectorAll('li') ?? [])].map((li) => li.dataset.key).sort();
  }, key);
}

/** Waits until the element `key` on `page` lists exactly the member keys `want`. */
export async function waitForUsers(page, key, want) {
  const sorted = [...want].sort();
  try {
    await page.waitForFunction(
      ([key, want]) => {
        const element = document.querySelector(`realtime-users[key="${key}"]`);
        const shown = [...(element?.shadowRoot?.querySelectorAll('li') ?? [])].map((li) => li.dataset.key).sort();
        return JSON.stringify(shown) === JSON.stringify(want);
      },
      [key, sorted],
      { timeout: BROWSER_WAIT },
    );
  } catch (e) {
    throw new Error(`<realtime-users key="${key}"> shows ${JSON.stringify(await usersShown(page, key))}, not ${JSON.stringify(sorted)}: ${e.message}`);
  }
}
