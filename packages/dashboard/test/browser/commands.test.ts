/**
 * Commands from a node's page in a real Chromium, answered by a real `tether-agent run` (its
 * built-ins `echo` and `system.metrics`, and `shell.exec` with one allowed command line): the
 * Run form invokes, the result follows `command.watch` live to its end, a bad JSON input is
 * refused in the form, and the node's command history lists what ran (refreshed by the feed).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHttpClient, type NodeCredentials } from '@tether/node-client';
import { STATE_TIMEOUT_MS, useBrowser } from './browser.js';
import {
  credentialsFile,
  enrollNode,
  LIVE_PRESENCE_ENV,
  scratchDir,
  seedSession,
  spawnAgent,
  useDashboardServer,
  type AgentProcess,
  type Seeded,
} from './server.js';
import { fleetRow, navigate, signIn, textOf, waitForConnection, waitForPresence } from './ui.js';

const server = useDashboardServer(LIVE_PRESENCE_ENV);
const browser = useBrowser({ keepPage: true });

let scratch: { path: string } & AsyncDisposable;
let agent: AgentProcess;
let credentials: NodeCredentials;
let seeded: Seeded;

beforeAll(async () => {
  scratch = await scratchDir();
  seeded = await seedSession(server, { name: 'commands session' });
  credentials = await enrollNode(server, seeded.enrollmentKey, 'command agent');
  const file = await credentialsFile(scratch.path, credentials);
  agent = spawnAgent([
    'run',
    '--credentials',
    file,
    '--url',
    server.url,
    '--session',
    seeded.sessionId,
    '--allow-exec',
    'uname -s',
  ]);
  await agent.waitForOutput(/: online/);
});

beforeEach(async () => {
  if (browser.page.url() === 'about:blank') {
    await signIn(browser.page, server.url, server.operator.token);
  }
});

afterAll(async () => {
  await agent?.[Symbol.asyncDispose]();
  await scratch?.[Symbol.asyncDispose]();
});

/** The node's page, from its fleet row's link (client-side navigation). */
async function openNodePage(): Promise<void> {
  const { page } = browser;
  await navigate(page, 'Fleet');
  await waitForConnection(page, 'live');
  await waitForPresence(page, credentials.nodeId, 'online');
  await fleetRow(page, credentials.nodeId).getByRole('link').first().click();
  await page.waitForURL(`**/nodes/${credentials.nodeId}`);
}

/** Opens the Run form of `capability`, fills the input and runs it; returns the result. */
async function run(capability: string, input: string, command?: string) {
  const { page } = browser;
  await page.getByRole('button', { name: `Run ${capability}`, exact: true }).click();
  const form = page.getByRole('form', { name: 'Run command' });
  await form.waitFor();
  expect(await form.getByLabel('Input (JSON)').inputValue()).toBe('{}');
  if (command !== undefined) await form.getByLabel('Command').selectOption(command);
  await form.getByLabel('Input (JSON)').fill(input);
  await form.getByRole('button', { name: 'Run', exact: true }).click();
  return page.getByTestId('command-result');
}

describe('dashboard: commands on a node page', () => {
  it('runs echo from the page and shows it succeed with the echoed output', async () => {
    const { page } = browser;
    await openNodePage();
    const result = await run('echo', '{"hello":"dashboard"}');
    await result.and(page.locator('[data-state="succeeded"]')).waitFor();
    const output = JSON.parse(await textOf(result.getByTestId('command-output'))) as unknown;
    expect(output).toEqual({ hello: 'dashboard' });
    // The Cancel button is only there while the command is open.
    expect(await result.getByRole('button', { name: 'Cancel' }).count()).toBe(0);
    await browser.screenshot('node-command-result', result);
  });

  it('refuses input that is not JSON in the form, sending nothing', async () => {
    const { page } = browser;
    const before = await server.operator.client.command.list.query({
      nodeId: credentials.nodeId,
    });
    const form = page.getByRole('form', { name: 'Run command' });
    await form.getByLabel('Input (JSON)').fill('{"hello": ');
    await form.getByRole('button', { name: 'Run', exact: true }).click();
    await expect
      .poll(() => textOf(form.getByRole('alert')), { timeout: STATE_TIMEOUT_MS })
      .toMatch(/^Not valid JSON/);
    expect(await form.getByLabel('Input (JSON)').getAttribute('aria-invalid')).toBe('true');
    const after = await server.operator.client.command.list.query({ nodeId: credentials.nodeId });
    expect(after.items.map((c) => c.commandId)).toEqual(before.items.map((c) => c.commandId));
  });

  it('runs system.metrics and shows the machine metrics it returned', async () => {
    const { page } = browser;
    const result = await run('system.metrics', '{}');
    await result.and(page.locator('[data-state="succeeded"]')).waitFor();
    const output = JSON.parse(await textOf(result.getByTestId('command-output'))) as Record<
      string,
      unknown
    >;
    for (const field of ['memoryTotalBytes', 'memoryUsedBytes', 'uptimeSeconds']) {
      expect(typeof output[field], field).toBe('number');
    }
    expect(output.memoryTotalBytes as number).toBeGreaterThan(0);
  });

  it("runs a command picked from the capability's allow-list", async () => {
    const { page } = browser;
    const result = await run('shell.exec', '{}', 'uname -s');
    await result.and(page.locator('[data-state="succeeded"]')).waitFor();
    const output = JSON.parse(await textOf(result.getByTestId('command-output'))) as {
      command: string;
      exitCode: number;
      stdout: string;
    };
    expect(output).toMatchObject({ command: 'uname -s', exitCode: 0 });
    expect(output.stdout.trim()).toBe('Linux');
  });

  it('lists every command run on the node in its history, newest first', async () => {
    const { page } = browser;
    const listed = await server.operator.client.command.list.query({ nodeId: credentials.nodeId });
    expect(listed.items.map((c) => [c.capability, c.command, c.state])).toEqual([
      ['shell.exec', 'uname -s', 'succeeded'],
      ['system.metrics', null, 'succeeded'],
      ['echo', null, 'succeeded'],
    ]);
    const rows = page.locator('[data-command-id]');
    // Live, without a reload: the last run's row reaches `succeeded` from the feed.
    await expect
      .poll(() => rows.evaluateAll((els) => els.map((el) => el.getAttribute('data-command-id'))), {
        timeout: STATE_TIMEOUT_MS,
      })
      .toEqual(listed.items.map((c) => c.commandId));
    for (const c of listed.items) {
      const row = page.locator(`[data-command-id="${c.commandId}"]`);
      await expect
        .poll(() => row.getAttribute('data-state'), { timeout: STATE_TIMEOUT_MS })
        .toBe('succeeded');
      expect(await textOf(row)).toContain(c.capability);
      expect(await textOf(row)).toContain('you');
    }
    await browser.screenshot('node-command-history', rows.first());
  });

  it('a gated command waits in the history; the owner approves one and denies another', async () => {
    const { page } = browser;
    // A session member whose invocations of a gated capability wait for the owner.
    const admin = createHttpClient(server.url, { token: server.bootstrapToken });
    const member = await admin.participant.create.mutate({ name: 'gated member', role: 'member' });
    await server.operator.client.membership.add.mutate({
      sessionId: seeded.sessionId,
      participantId: member.participantId,
      role: 'collaborator',
    });
    await server.operator.client.policy.set.mutate({
      nodeId: credentials.nodeId,
      capability: 'echo',
      policy: 'gated',
    });
    const asMember = createHttpClient(server.url, { token: member.token });
    const invoke = (n: number) =>
      asMember.command.invoke.mutate({
        target: { nodeId: credentials.nodeId },
        capability: 'echo',
        input: { n },
        idempotencyKey: `gated-${n}`,
      });

    const approved = await invoke(1);
    expect(approved.state).toBe('awaiting_approval');
    // The row arrives from the feed (no reload, no polling) with the owner's buttons.
    const row = page.locator(`[data-command-id="${approved.commandId}"]`);
    await row.and(page.locator('[data-state="awaiting_approval"]')).waitFor();
    expect(await textOf(row)).toContain(member.participantId);
    await browser.screenshot('node-command-gated', row);
    await row.getByRole('button', { name: 'Approve' }).click();
    await row.and(page.locator('[data-state="succeeded"]')).waitFor();
    expect(await row.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    const done = await server.operator.client.command.get.query({ commandId: approved.commandId });
    expect(done.output).toEqual({ n: 1 });

    const denied = await invoke(2);
    const deniedRow = page.locator(`[data-command-id="${denied.commandId}"]`);
    await deniedRow.and(page.locator('[data-state="awaiting_approval"]')).waitFor();
    await deniedRow.getByRole('button', { name: 'Deny' }).click();
    await deniedRow.and(page.locator('[data-state="denied"]')).waitFor();
    const view = await server.operator.client.command.get.query({ commandId: denied.commandId });
    expect(view.state).toBe('denied');
    expect(view.decidedBy).toBe(server.operator.participantId);
  });

  it('cancels a command the node has not answered', async () => {
    const { page } = browser;
    // Frozen (SIGSTOP): the socket stays open, nothing answers.
    agent.child.kill('SIGSTOP');
    try {
      const result = await run('system.metrics', '{}');
      await result.and(page.locator('[data-state="pending"], [data-state="delivered"]')).waitFor();
      await result.getByRole('button', { name: 'Cancel' }).click();
      await result.and(page.locator('[data-state="cancelled"]')).waitFor();
      expect(await result.getByRole('button', { name: 'Cancel' }).count()).toBe(0);
    } finally {
      agent.child.kill('SIGCONT');
    }
    const listed = await server.operator.client.command.list.query({ nodeId: credentials.nodeId });
    expect(listed.items[0]).toMatchObject({ capability: 'system.metrics', state: 'cancelled' });
    const row = page.locator(`[data-command-id="${listed.items[0]!.commandId}"]`);
    await row.and(page.locator('[data-state="cancelled"]')).waitFor();
  });

  it('a command the frozen node never answers expires at the timeout set in the form', async () => {
    const { page } = browser;
    agent.child.kill('SIGSTOP');
    try {
      await page.getByRole('button', { name: 'Run echo', exact: true }).click();
      const form = page.getByRole('form', { name: 'Run command' });
      await form.getByLabel('Timeout (seconds)').fill('1');
      await form.getByRole('button', { name: 'Run', exact: true }).click();
      const result = page.getByTestId('command-result');
      await result.and(page.locator('[data-state="expired"]')).waitFor();
      expect(await result.getByRole('button', { name: 'Cancel' }).count()).toBe(0);
    } finally {
      agent.child.kill('SIGCONT');
    }
    const [last] = (await server.operator.client.command.list.query({ nodeId: credentials.nodeId }))
      .items;
    expect(last).toMatchObject({ capability: 'echo', state: 'expired', timeoutMs: 1_000 });
  });

  it("shows the server's refusal of an input that breaks the capability's schema", async () => {
    const { page } = browser;
    // The browser logs the refused request (400) itself.
    browser.allowConsoleErrors(/status of 400 .*\/trpc\/command\.invoke/);
    const before = await server.operator.client.command.list.query({
      nodeId: credentials.nodeId,
    });
    await page.getByRole('button', { name: 'Run system.metrics', exact: true }).click();
    const form = page.getByRole('form', { name: 'Run command' });
    await form.getByLabel('Input (JSON)').fill('{"unexpected":true}');
    await form.getByRole('button', { name: 'Run', exact: true }).click();
    await expect
      .poll(() => textOf(form.getByRole('alert')), { timeout: STATE_TIMEOUT_MS })
      .toMatch(/schema|input/i);
    const after = await server.operator.client.command.list.query({ nodeId: credentials.nodeId });
    expect(after.items.length).toBe(before.items.length);
    // Closing the form gives the focus back to the button that opened it.
    await form.getByRole('button', { name: 'Close' }).click();
    await form.waitFor({ state: 'detached' });
    expect(
      await page.evaluate(() => document.activeElement?.getAttribute('aria-label') ?? null),
    ).toBe('Run system.metrics');
  });

  it('pages the history 20 at a time with "Load more"', async () => {
    const { page } = browser;
    const existing = await server.operator.client.command.list.query({
      nodeId: credentials.nodeId,
    });
    // Enough commands (from the API, arriving through the feed) for a second page.
    for (let n = existing.items.length; n <= 20; n++) {
      await server.operator.client.command.invoke.mutate({
        target: { nodeId: credentials.nodeId },
        capability: 'echo',
        input: { n },
        idempotencyKey: `paging-${n}`,
      });
    }
    const all = await server.operator.client.command.list.query({
      nodeId: credentials.nodeId,
      limit: 100,
    });
    expect(all.items.length).toBe(21);
    const ids = all.items.map((c) => c.commandId);
    const shown = () =>
      page
        .locator('[data-command-id]')
        .evaluateAll((els) => els.map((el) => el.getAttribute('data-command-id')));
    await expect.poll(shown, { timeout: STATE_TIMEOUT_MS }).toEqual(ids.slice(0, 20));
    await page.getByRole('button', { name: 'Load more' }).click();
    await expect.poll(shown, { timeout: STATE_TIMEOUT_MS }).toEqual(ids);
    expect(await page.getByRole('button', { name: 'Load more' }).count()).toBe(0);
  });
});
