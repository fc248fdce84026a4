/**
 * Headless Chromium for the browser tests: Debian's build (playwright cannot download its own here), with the
 * flags that keep it from reaching for the network it does not have.
 */
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = process.env.FERRY_CHROMIUM ?? '/usr/bin/chromium';

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}
