/**
 * The browser side of the dashboard's browser tests: Debian's Chromium driven by playwright-core
 * (no browser download), one browser per test file and one context reused by its tests, every
 * console error and page error failing the test that caused it, and screenshots of each page
 * at desktop and phone width.
 */
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import {
  chromium,
  type Browser,
  type BrowserContext,
  type ConsoleMessage,
  type Locator,
  type Page,
} from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import { CHROMIUM_PATH, chromiumMissing } from './chromium.js';

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
];

export const DESKTOP = { width: 1280, height: 800 } as const;
export const PHONE = { width: 390, height: 844 } as const;

export const SCREENSHOT_DIR = fileURLToPath(
  new URL('../../test-results/screenshots/', import.meta.url),
);

/** How long a state the server reaches on its own may take to show in the page. */
export const STATE_TIMEOUT_MS = 20_000;

export interface BrowserHandle {
  browser: Browser;
  context: BrowserContext;
  /** The page of the current test (one tab for the file, or a fresh tab per test). */
  page: Page;
  /**
   * Console errors this test provokes on purpose and so allows (the browser's own line for a
   * refused request, a failed WebSocket while the server is down): anything else fails it.
   */
  allowConsoleErrors(...patterns: RegExp[]): void;
  /**
   * Saves `<name>-desktop.png` (1280×800) and `<name>-phone.png` (390×844) of the page, with
   * `focus` (when given) scrolled into view at each size.
   */
  screenshot(name: string, focus?: Locator): Promise<void>;
}

/** Every screenshot taken in this process, for the suite's summary. */
export const screenshotsTaken: string[] = [];

export interface BrowserOptions {
  /**
   * One tab for all the file's tests (they continue one story, signed in once); by default
   * each test gets a fresh tab in the shared context.
   */
  keepPage?: boolean;
}

/**
 * One Chromium for the test file (launched before its first test, closed after the last) and
 * one context reused by its tests. Console errors and page errors are checked after each test.
 */
export function useBrowser(options: BrowserOptions = {}): BrowserHandle {
  const errors: string[] = [];
  let allowed: RegExp[] = [];
  const handle = {
    allowConsoleErrors(...patterns: RegExp[]) {
      allowed.push(...patterns);
    },
    async screenshot(name: string, focus?: Locator) {
      const page = handle.page;
      await mkdir(SCREENSHOT_DIR, { recursive: true });
      for (const [size, viewport] of [
        ['desktop', DESKTOP],
        ['phone', PHONE],
      ] as const) {
        await page.setViewportSize(viewport);
        await focus?.scrollIntoViewIfNeeded();
        const path = `${SCREENSHOT_DIR}${name}-${size}.png`;
        await page.screenshot({ path, fullPage: false });
        screenshotsTaken.push(path);
      }
      await page.setViewportSize(DESKTOP);
    },
  } as BrowserHandle;

  const watch = (page: Page): void => {
    page.on('console', (msg: ConsoleMessage) => {
      if (msg.type() !== 'error') return;
      const where = msg.location().url;
      errors.push(`console.error: ${msg.text()}${where ? ` (${where})` : ''}`);
    });
    page.on('pageerror', (error) => errors.push(`page error: ${error.stack ?? error.message}`));
  };

  beforeAll(async () => {
    const missing = chromiumMissing();
    if (missing) throw new Error(missing);
    handle.browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    handle.context = await handle.browser.newContext({ viewport: DESKTOP });
    handle.context.setDefaultTimeout(STATE_TIMEOUT_MS);
    handle.context.on('page', watch);
  });

  beforeEach(async () => {
    errors.length = 0;
    allowed = [];
    if (!options.keepPage || !handle.page) handle.page = await handle.context.newPage();
  });

  afterEach(async () => {
    if (!options.keepPage) await handle.page?.close();
    const unexpected = errors.filter((line) => !allowed.some((pattern) => pattern.test(line)));
    errors.length = 0;
    allowed = [];
    expect(unexpected, 'console errors or page errors in the browser').toEqual([]);
  });

  afterAll(async () => {
    await handle.browser?.close();
  });
  return handle;
}
