/**
 * Operator workflows in a real Chromium against a real server, each finished by a real agent:
 * approving pairing requests (by their button and by typing the code the device shows), raising
 * a session's floor until a node turns read-only, and creating an enrollment key in the page
 * that a node then enrolls with. One server, one browser tab signed in once.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadCredentials, pair, type TetherNode } from '@tether/node-client';
import { useBrowser } from './browser.js';
import {
  enrollNode,
  LIVE_PRESENCE_ENV,
  scratchDir,
  seedSession,
  spawnAgent,
  startNode,
  useDashboardServer,
  type Seeded,
} from './server.js';
import { fleetRow, navigate, signIn, textOf, waitForConnection, waitForPresence } from './ui.js';

const server = useDashboardServer({
  ...LIVE_PRESENCE_ENV,
  // Devices poll their pairing claim quickly here; the public rate limit is raised to match.
  TETHER_RATE_PUBLIC_PER_MINUTE: '100000',
});
const browser = useBrowser({ keepPage: true });

let seeded: Seeded;
let scratch: { path: string } & AsyncDisposable;
const nodes: (TetherNode & AsyncDisposable)[] = [];

beforeAll(async () => {
  seeded = await seedSession(server, { name: 'floor session' });
  scratch = await scratchDir();
});

// Signed in once, in the file's tab, by whichever test runs first.
beforeEach(async () => {
  if (browser.page.url() === 'about:blank') {
    await signIn(browser.page, server.url, server.operator.token);
  }
});

afterAll(async () => {
  await Promise.all(nodes.map((node) => node.stop()));
  await scratch?.[Symbol.asyncDispose]();
});

describe('dashboard: operator workflows', () => {
  it('a pairing request appears live; approved by its button, the device claims its token', async () => {
    const { page } = browser;
    await navigate(page, 'Pairing');
    await waitForConnection(page, 'live');
    await browser.screenshot('pairing-empty');

    let announce!: (shown: { code: string; requestId: string }) => void;
    const codeShown = new Promise<{ code: string; requestId: string }>((r) => (announce = r));
    const claimed = pair({
      url: server.url,
      name: 'kiosk by button',
      nodeType: 'kiosk',
      pollIntervalMs: 200,
      onCode: (code, info) => announce({ code, requestId: info.requestId }),
    });
    // A device that fails before showing a code fails the test instead of hanging it.
    void claimed.catch(() => undefined);
    const { code, requestId } = await Promise.race([
      codeShown,
      claimed.then(() => Promise.reject(new Error('claimed before a code was shown'))),
    ]);

    const row = page.locator(`[data-request-id="${requestId}"]`);
    await row.waitFor();
    expect(await textOf(row.getByTestId('pairing-code'))).toBe(code);
    await browser.screenshot('pairing-pending');
    await row.getByRole('button', { name: 'Approve' }).click();

    const credentials = await claimed;
    expect(credentials.token).toMatch(/^tnd_/);
    expect(credentials.ownerParticipantId).toBe(server.operator.participantId);
    // The page follows: the request is no longer pending.
    await row.waitFor({ state: 'detached' });
    const view = await server.operator.client.node.get.query({ nodeId: credentials.nodeId });
    expect(view.name).toBe('kiosk by button');
  });

  it('a pairing request approved by typing the code the device shows; tether-agent saves its token', async () => {
    const { page } = browser;
    const file = `${scratch.path}/paired.json`;
    await using agent = spawnAgent([
      'pair',
      '--url',
      server.url,
      '--name',
      'kiosk by code',
      '--credentials',
      file,
      '--poll-interval',
      '200',
    ]);
    const [, code] = await agent.waitForOutput(/pairing code: (\S+)/);
    // The request shows up live before anyone approves it.
    await page.getByTestId('pairing-code').filter({ hasText: code! }).waitFor();

    await page.getByLabel('Pairing code').fill(code!);
    await page.getByRole('button', { name: 'Approve code' }).click();
    expect(await agent.exited).toBe(0);
    const credentials = await loadCredentials(file);
    expect(credentials.token).toMatch(/^tnd_/);
    expect(credentials.ownerParticipantId).toBe(server.operator.participantId);
    await page
      .getByTestId('pairing-code')
      .filter({ hasText: code! })
      .waitFor({ state: 'detached' });
  });

  it("raising a session's floor in the page turns the older node's roster row read-only", async () => {
    const { page } = browser;
    const older = await enrollNode(server, seeded.enrollmentKey, 'older agent');
    const newer = await enrollNode(server, seeded.enrollmentKey, 'newer agent');
    for (const [credentials, nodeVersion] of [
      [older, '2.0'],
      [newer, '2.7'],
    ] as const) {
      const node = startNode(server, credentials, { sessionId: seeded.sessionId, nodeVersion });
      nodes.push(node);
      await node.start();
      await node.waitFor('online');
    }

    await navigate(page, 'Sessions');
    await browser.screenshot('sessions');
    await page.getByRole('link', { name: 'floor session' }).click();
    await page.waitForURL(`**/sessions/${seeded.sessionId}`);
    const olderRow = page.locator(`[data-node-id="${older.nodeId}"]`);
    const newerRow = page.locator(`[data-node-id="${newer.nodeId}"]`);
    await olderRow.waitFor();
    await newerRow.waitFor();
    expect(await olderRow.getByTestId('read-only').count()).toBe(0);

    await page.getByLabel('Minimum node version').fill('2.5');
    await page.getByRole('button', { name: 'Raise floor' }).click();
    await olderRow.getByTestId('read-only').waitFor();
    expect(await newerRow.getByTestId('read-only').count()).toBe(0);
    await browser.screenshot('session-floor-raised');

    // The fleet says the same of that node.
    await navigate(page, 'Fleet');
    await waitForPresence(page, older.nodeId, 'online');
    await fleetRow(page, older.nodeId).getByTestId('read-only').waitFor();
    expect(await fleetRow(page, newer.nodeId).getByTestId('read-only').count()).toBe(0);
  });

  it('an enrollment key created in the page enrolls a node, which then appears in the fleet', async () => {
    const { page } = browser;
    await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], {
      origin: server.url,
    });
    await navigate(page, 'Enrollment keys');
    await page.getByLabel('Reusable').uncheck();
    await page.getByRole('button', { name: 'Create key' }).click();
    const shown = page.getByTestId('new-enrollment-key');
    await shown.waitFor();
    const key = await textOf(shown);
    expect(key).toMatch(/^tek_/);
    await page.getByRole('button', { name: 'Copy' }).click();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(key);
    await browser.screenshot('keys-created');

    const file = `${scratch.path}/enrolled.json`;
    await using agent = spawnAgent([
      'enroll',
      '--url',
      server.url,
      '--key',
      key,
      '--name',
      'enrolled from the page',
      '--credentials',
      file,
    ]);
    expect(await agent.exited).toBe(0);
    const credentials = await loadCredentials(file);

    await navigate(page, 'Fleet');
    const row = fleetRow(page, credentials.nodeId);
    await row.waitFor();
    expect(await textOf(row)).toContain('enrolled from the page');
    // Enrolled, never connected: known and offline.
    await waitForPresence(page, credentials.nodeId, 'offline');

    // Its page, from the fleet row's link.
    await row.getByRole('link').first().click();
    await page.waitForURL(`**/nodes/${credentials.nodeId}`);
    expect(await textOf(page.getByRole('heading', { level: 1 }))).toBe('enrolled from the page');
    for (const button of ['Edit', 'Rotate token', 'Revoke']) {
      expect(await page.getByRole('button', { name: button }).count(), button).toBe(1);
    }
    await browser.screenshot('node');
  });
  it('an enrollment key revoked in the page (after a confirmation) enrolls no more devices', async () => {
    const { page } = browser;
    await navigate(page, 'Enrollment keys');
    const rows = page.locator('[data-key-id]');
    await rows.first().waitFor();
    const before = new Set(
      await rows.evaluateAll((els) => els.map((el) => el.getAttribute('data-key-id'))),
    );
    await page.getByLabel('Reusable').check();
    await page.getByRole('button', { name: 'Create key' }).click();
    const shown = page.getByTestId('new-enrollment-key');
    await shown.waitFor();
    const key = await textOf(shown);
    expect(key).toMatch(/^tek_/);
    // The new key's row: the one that was not there before.
    await expect.poll(() => rows.count()).toBe(before.size + 1);
    const keyId = (
      await rows.evaluateAll((els) => els.map((el) => el.getAttribute('data-key-id')))
    ).find((id) => !before.has(id))!;
    const row = page.locator(`[data-key-id="${keyId}"]`);
    expect(await textOf(row.getByTestId('key-state'))).toBe('active');

    await row.getByRole('button', { name: 'Revoke' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
    await expect.poll(() => textOf(row.getByTestId('key-state'))).toBe('revoked');
    expect(await row.getByRole('button', { name: 'Revoke' }).count()).toBe(0);

    await using agent = spawnAgent([
      'enroll',
      '--url',
      server.url,
      '--key',
      key,
      '--credentials',
      `${scratch.path}/refused.json`,
    ]);
    const code = await agent.exited;
    expect(code, agent.output()).toBe(1);
    expect(agent.output()).toMatch(/enrollment/i);
  });

  it("a node's token is rotated and the node revoked from its page, each after a confirmation", async () => {
    const { page } = browser;
    const credentials = await enrollNode(server, seeded.enrollmentKey, 'rotated agent');
    // Above the floor the floor test may have raised: a read-only node cannot come online.
    const attach = { sessionId: seeded.sessionId, nodeVersion: '2.7' };
    const first = startNode(server, credentials, attach);
    nodes.push(first);
    await first.start();
    await first.waitFor('online', { timeoutMs: 20_000 });

    await navigate(page, 'Fleet');
    await waitForPresence(page, credentials.nodeId, 'online');
    await fleetRow(page, credentials.nodeId).getByRole('link').first().click();
    await page.waitForURL(`**/nodes/${credentials.nodeId}`);
    expect(await textOf(page.getByRole('heading', { level: 1 }))).toBe('rotated agent');

    // Rotate: the old token ends at once (the running node is cut off for good), the new one
    // is shown once and works.
    await page.getByRole('button', { name: 'Rotate token' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await browser.screenshot('node-confirm');
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    const shown = page.getByTestId('new-token');
    await shown.waitFor();
    const newToken = await textOf(shown);
    expect(newToken).toMatch(/^tnd_/);
    expect(newToken).not.toBe(credentials.token);
    await first.waitFor('terminated', { timeoutMs: 20_000 });
    expect(first.snapshot().termination?.code).toBe('credential_revoked');
    const second = startNode(server, { ...credentials, token: newToken }, attach);
    nodes.push(second);
    await second.start();
    await second.waitFor('online', { timeoutMs: 20_000 });

    // Revoke: terminal; the node is cut off again and the fleet shows it offline.
    await page.getByRole('button', { name: 'Revoke' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
    await second.waitFor('terminated', { timeoutMs: 20_000 });
    const view = await server.operator.client.node.get.query({ nodeId: credentials.nodeId });
    expect(view.status).toBe('revoked');
    await navigate(page, 'Fleet');
    await waitForPresence(page, credentials.nodeId, 'offline');
    await expect.poll(() => textOf(fleetRow(page, credentials.nodeId))).toContain('revoked');
  });

  it('the API reference opens from the navigation', async () => {
    const { page } = browser;
    await navigate(page, 'API reference');
    await page.waitForURL('**/api/docs**');
    await page.getByText('/api/v1/openapi.json').first().waitFor();
    await browser.screenshot('api-reference');
  });
});
