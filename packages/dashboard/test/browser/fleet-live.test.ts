/**
 * The dashboard in a real Chromium against a real server: signing in, the fleet filling in
 * live as real nodes come online with their metrics, a node that stops beating going degraded
 * then offline in front of the operator, and the page riding out a killed server.
 * The tests of this file run in order on one server and one browser tab.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TetherNode } from '@tether/node-client';
import { useBrowser } from './browser.js';
import {
  credentialsFile,
  enrollNode,
  LIVE_PRESENCE_ENV,
  scratchDir,
  seedSession,
  spawnAgent,
  startNode,
  useDashboardServer,
  type AgentProcess,
  type Seeded,
} from './server.js';
import {
  connectionStatus,
  expectCount,
  expectSameDocument,
  fleetRow,
  markDocument,
  textOf,
  waitForConnection,
  waitForPresence,
} from './ui.js';

const server = useDashboardServer({
  ...LIVE_PRESENCE_ENV,
  // Server pings far apart: a node that stops answering leaves through the staleness sweep
  // (degraded, then offline), not through a dead socket (straight to offline).
  TETHER_WS_PING_MS: '30000',
  TETHER_WS_PONG_WAIT_MS: '30000',
});
const browser = useBrowser({ keepPage: true });

let seeded: Seeded;
const nodes: (TetherNode & AsyncDisposable)[] = [];
let agent: AgentProcess | undefined;
let scratch: { path: string } & AsyncDisposable;

beforeAll(async () => {
  seeded = await seedSession(server);
  scratch = await scratchDir();
});

afterAll(async () => {
  await agent?.[Symbol.asyncDispose]();
  await Promise.all(nodes.map((node) => node.stop()));
  await scratch?.[Symbol.asyncDispose]();
});

describe('dashboard: live fleet', () => {
  it('sign in: a wrong token is refused with an alert; the right one shows the fleet', async () => {
    const { page } = browser;
    await page.goto(`${server.url}/`);
    const form = page.getByRole('form', { name: 'Sign in' });
    await browser.screenshot('sign-in');
    await form.getByLabel('Token').fill('tpt_this-is-not-a-valid-token-at-all');
    await form.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect((await alert.textContent())?.trim()).not.toBe('');
    expect(await page.getByRole('navigation', { name: 'Main' }).count()).toBe(0);
    await browser.screenshot('sign-in-refused');

    await form.getByLabel('Token').fill(server.operator.token);
    await form.getByRole('button', { name: 'Sign in' }).click();
    const nav = page.getByRole('navigation', { name: 'Main' });
    await nav.waitFor();
    for (const link of ['Fleet', 'Sessions', 'Pairing', 'Enrollment keys', 'API reference']) {
      expect(await nav.getByRole('link', { name: link }).count(), link).toBe(1);
    }
    expect(await page.getByRole('button', { name: 'Sign out' }).count()).toBe(1);
    await waitForConnection(page, 'live');
    await expectCount(page, 'count-online', 0);
    await browser.screenshot('fleet-empty');
  });

  it('simulated nodes appear online with their metrics', async () => {
    const { page } = browser;
    await markDocument(page);
    for (const name of ['alpha', 'bravo', 'charlie']) {
      const credentials = await enrollNode(server, seeded.enrollmentKey, `node ${name}`);
      const node = startNode(server, credentials, { sessionId: seeded.sessionId });
      nodes.push(node);
      await node.start();
    }
    for (const node of nodes) {
      const nodeId = node.nodeId!;
      await waitForPresence(page, nodeId, 'online');
      const row = fleetRow(page, nodeId);
      // Filled in by the nodes' beats (CPU and memory measured by the SDK on this machine).
      for (const cell of ['cpu', 'memory']) {
        await expect.poll(() => textOf(row.getByTestId(cell)), { timeout: 30_000 }).toMatch(/\d/);
      }
      expect(await row.getByRole('link').first().getAttribute('href')).toBe(
        `/nodes/${encodeURIComponent(nodeId)}`,
      );
    }
    await expectCount(page, 'count-online', 3);
    await expectSameDocument(page);
    await browser.screenshot('fleet-online');
  });

  it('a node that stops beating goes degraded, then offline, without a reload', async () => {
    const { page } = browser;
    // Its own process, so it can be frozen (SIGSTOP): the socket stays open, the beats stop.
    const credentials = await enrollNode(server, seeded.enrollmentKey, 'node delta');
    const file = await credentialsFile(scratch.path, credentials);
    agent = spawnAgent([
      'run',
      '--credentials',
      file,
      '--session',
      seeded.sessionId,
      '--capability',
      'shell',
    ]);
    await agent.waitForOutput(/: online/);
    await waitForPresence(page, credentials.nodeId, 'online');
    await expectCount(page, 'count-online', 4);
    await markDocument(page);

    agent.child.kill('SIGSTOP');
    await waitForPresence(page, credentials.nodeId, 'degraded');
    await expectCount(page, 'count-degraded', 1);
    await browser.screenshot('fleet-degraded');
    await waitForPresence(page, credentials.nodeId, 'offline');
    await expectCount(page, 'count-offline', 1);
    await expectCount(page, 'count-degraded', 0);
    await expectCount(page, 'count-online', 3);
    await expectSameDocument(page);
    await agent[Symbol.asyncDispose]();
    agent = undefined;
  });

  it('the server is killed and started again: the page shows offline, then recovers by itself', async () => {
    const { page } = browser;
    // While the server is down the browser reports its refused connections itself.
    browser.allowConsoleErrors(
      /ERR_CONNECTION_REFUSED|ERR_INCOMPLETE_CHUNKED_ENCODING|ERR_EMPTY_RESPONSE/,
    );
    await waitForConnection(page, 'live');
    await markDocument(page);

    await server.kill();
    await waitForConnection(page, 'offline', 30_000);
    expect(await connectionStatus(page).getAttribute('data-state')).toBe('offline');
    await browser.screenshot('fleet-server-down');

    await server.restart();
    await waitForConnection(page, 'live', 60_000);
    // The SDK nodes reconnect on their own; the page follows them.
    for (const node of nodes) await waitForPresence(page, node.nodeId!, 'online', 30_000);

    // A change made after the restart reaches the page live: a new node enrolls and beats.
    const credentials = await enrollNode(server, seeded.enrollmentKey, 'node echo');
    const late = startNode(server, credentials, { sessionId: seeded.sessionId });
    nodes.push(late);
    await late.start();
    await waitForPresence(page, credentials.nodeId, 'online');
    await expectCount(page, 'count-online', 4);
    await expectSameDocument(page);
    await browser.screenshot('fleet-recovered');
  });
});
