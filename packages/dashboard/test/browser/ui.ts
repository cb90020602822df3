/**
 * The dashboard's UI contract as the tests use it (roles, labels, test ids, data attributes)
 * and waits on page states: a locator that auto-waits, or `expect.poll` on what the page
 * shows. Never a fixed sleep.
 */
import type { Locator, Page } from 'playwright-core';
import { expect } from 'vitest';
import { STATE_TIMEOUT_MS } from './browser.js';

export type Presence = 'online' | 'degraded' | 'offline';
export type ConnectionState = 'live' | 'connecting' | 'offline' | 'reloaded';

export const connectionStatus = (page: Page): Locator => page.getByTestId('connection-status');

/** Node ids never contain a quote or a backslash, so they sit in a quoted attribute selector. */
export const fleetRow = (page: Page, nodeId: string): Locator =>
  page.locator(`[data-node-id="${nodeId}"]`);

/** Resolves once the node's row shows `presence` (auto-waiting on the attribute). */
export async function waitForPresence(
  page: Page,
  nodeId: string,
  presence: Presence,
  timeout = STATE_TIMEOUT_MS,
): Promise<void> {
  await fleetRow(page, nodeId)
    .locator(`[data-testid="presence"][data-presence="${presence}"]`)
    .waitFor({ state: 'attached', timeout });
}

export async function waitForConnection(
  page: Page,
  state: ConnectionState,
  timeout = STATE_TIMEOUT_MS,
): Promise<void> {
  await page
    .locator(`[data-testid="connection-status"][data-state="${state}"]`)
    .waitFor({ state: 'attached', timeout });
}

/** The number a counter (`count-online` …) shows, polled until it equals `expected`. */
export async function expectCount(
  page: Page,
  counter: 'count-online' | 'count-degraded' | 'count-offline',
  expected: number,
  timeout = STATE_TIMEOUT_MS,
): Promise<void> {
  await expect
    .poll(async () => Number((await textOf(page.getByTestId(counter))) || NaN), {
      timeout,
      interval: 50,
    })
    .toBe(expected);
}

/**
 * The text of what `locator` matches now (trimmed, '' if nothing matches yet): for
 * `expect.poll`, which does the waiting (a locator's own textContent() would block on it).
 */
export async function textOf(locator: Locator): Promise<string> {
  return (await locator.allTextContents()).join(' ').trim();
}

/** Signs in through the form and waits for the main navigation. */
export async function signIn(page: Page, baseUrl: string, token: string): Promise<void> {
  await page.goto(`${baseUrl}/`);
  const form = page.getByRole('form', { name: 'Sign in' });
  await form.getByLabel('Token').fill(token);
  await form.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
}

/** Follows a link of the main navigation (client-side, no reload). */
export async function navigate(page: Page, link: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: link }).click();
}

/**
 * Marks the current document; `expectSameDocument` later fails if the page reloaded or
 * navigated away in between (live updates must arrive without a reload).
 */
export async function markDocument(page: Page): Promise<void> {
  await page.evaluate(() => {
    (window as unknown as { __tetherTestMark?: boolean }).__tetherTestMark = true;
  });
}

export async function expectSameDocument(page: Page): Promise<void> {
  const marked = await page.evaluate(
    () => (window as unknown as { __tetherTestMark?: boolean }).__tetherTestMark === true,
  );
  expect(marked, 'the page reloaded').toBe(true);
}
