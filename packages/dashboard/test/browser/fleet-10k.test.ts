/**
 * The fleet view at 10 000 nodes, in a real Chromium against a real server. The nodes are
 * seeded straight into the test database (one statement each for identities, presence and a
 * session's attachments), with a known mix of presence, capabilities, types, locations, labels
 * and names, so the answer to every filter is known here without asking the server.
 *
 * Each filter is checked for correctness (the matched count the page shows, and every row it
 * renders satisfies the filter). The time each takes to update the view is measured and
 * printed (and written to test-results/filter-timings.json), never asserted.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBrowser } from './browser.js';
import { useDashboardServer } from './server.js';
import { expectCount, navigate, signIn, textOf, waitForConnection } from './ui.js';

const N = 10_000;
const TYPES = ['daemon', 'desktop', 'edge'] as const;
const LOCATIONS = ['lab-a', 'lab-b', 'lab-c', 'lab-d', 'lab-e'] as const;

/** What node `i` was seeded with (the SQL below builds exactly this). */
function seeded(i: number) {
  return {
    nodeId: `fleet-${String(i).padStart(5, '0')}`,
    name: `machine ${i}`,
    presence: i % 10 < 6 ? 'online' : i % 10 < 8 ? 'degraded' : 'offline',
    capabilities: i % 4 === 0 ? ['gpu', 'shell'] : ['shell'],
    nodeType: TYPES[i % 3]!,
    location: LOCATIONS[i % 5]!,
    labels: { env: i % 2 === 0 ? 'prod' : 'staging', rack: `r${i % 7}` } as Record<string, string>,
    inSession: i % 20 === 0,
  };
}
type Seeded = ReturnType<typeof seeded>;

const SEED_NODES = `
  INSERT INTO nodes (node_id, owner_participant_id, name, node_type, platform, location, labels,
                     capabilities, client_version, token_hash)
  SELECT 'fleet-' || lpad(i::text, 5, '0'), $1, 'machine ' || i,
         (ARRAY['daemon', 'desktop', 'edge'])[i % 3 + 1], 'linux',
         (ARRAY['lab-a', 'lab-b', 'lab-c', 'lab-d', 'lab-e'])[i % 5 + 1],
         jsonb_build_object('env', CASE WHEN i % 2 = 0 THEN 'prod' ELSE 'staging' END,
                            'rack', 'r' || (i % 7)),
         CASE WHEN i % 4 = 0 THEN '{"gpu": {}, "shell": {}}' ELSE '{"shell": {}}' END::jsonb,
         '2.0', sha256(convert_to('browser-test-node-' || i, 'UTF8'))
    FROM generate_series(0, $2::int - 1) AS i`;

const SEED_PRESENCE = `
  INSERT INTO runtime_node_presence (node_id, health_state, last_heartbeat_at, online_since, metrics)
  SELECT 'fleet-' || lpad(i::text, 5, '0'),
         CASE WHEN i % 10 < 6 THEN 'online' WHEN i % 10 < 8 THEN 'degraded' ELSE 'offline' END,
         CASE WHEN i % 10 < 8 THEN now() END,
         CASE WHEN i % 10 < 6 THEN now() END,
         CASE WHEN i % 10 < 8 THEN jsonb_build_object(
           'cpuPercent', i % 100, 'memoryUsedBytes', (i % 16 + 1) * 268435456,
           'memoryTotalBytes', 17179869184, 'uptimeSeconds', i * 7) END
    FROM generate_series(0, $1::int - 1) AS i`;

const SEED_ATTACHMENTS = `
  INSERT INTO runtime_node_attachments (session_id, participant_id, node_id, capabilities,
                                        client_version, state)
  SELECT $1, $2, 'fleet-' || lpad(i::text, 5, '0'), '{"shell": {}}', '2.0', 'offline'
    FROM generate_series(0, $3::int - 1, 20) AS i`;

// Presence that stays as seeded for the whole file: nothing beats, nothing ages.
const server = useDashboardServer({
  TETHER_DEGRADED_AFTER_MS: '3600000',
  TETHER_OFFLINE_AFTER_MS: '7200000',
});
const browser = useBrowser({ keepPage: true });
const nodes = Array.from({ length: N }, (_, i) => seeded(i));
let sessionId: string;

beforeAll(async () => {
  const session = await server.operator.client.session.create.mutate({ name: 'ten thousand' });
  sessionId = session.sessionId;
  const { db } = server.database;
  await db.query(SEED_NODES, [server.operator.participantId, N]);
  await db.query(SEED_PRESENCE, [N]);
  await db.query(SEED_ATTACHMENTS, [sessionId, server.operator.participantId, N]);
  await db.query('ANALYZE nodes, runtime_node_presence, runtime_node_attachments');
});

/** One control of the filter bar, whatever it is (a select or a text box), set to `value`. */
async function setFilter(page: Page, label: string, value: string): Promise<void> {
  const control = page.getByLabel(label, { exact: true });
  const tag = await control.evaluate((el) => el.tagName.toLowerCase());
  if (tag === 'select') {
    if (value === '') await control.selectOption({ index: 0 });
    else await control.selectOption(value);
  } else {
    await control.fill(value);
  }
}

/** The first number of `row-count` ("matched/loaded"): how many nodes match the filters. */
async function matched(page: Page): Promise<number> {
  const text = await textOf(page.getByTestId('row-count'));
  const first = /\d[\d,\s]*/.exec(text)?.[0].replace(/[,\s]/g, '');
  return first === undefined ? NaN : Number(first);
}

/** The rows the page renders now (a virtualised list renders only some). */
async function renderedRows(page: Page): Promise<{ nodeId: string; presence: string }[]> {
  return page.locator('[data-node-id]').evaluateAll((rows) =>
    rows.map((row) => ({
      nodeId: row.getAttribute('data-node-id') ?? '',
      presence: row.querySelector('[data-testid="presence"]')?.getAttribute('data-presence') ?? '',
    })),
  );
}

const timings: { filter: string; matched: number; ms: number }[] = [];

/**
 * Applies `filters` (label → value; the others cleared first), waits until the page shows the
 * expected count, checks every rendered row against `accept`, and records how long the view
 * took to update (from the input to the right count on screen).
 */
async function checkFilter(
  page: Page,
  name: string,
  filters: Record<string, string>,
  accept: (node: Seeded) => boolean,
): Promise<void> {
  const expected = nodes.filter(accept);
  const started = performance.now();
  for (const [label, value] of Object.entries(filters)) await setFilter(page, label, value);
  await expect.poll(() => matched(page), { timeout: 60_000, interval: 20 }).toBe(expected.length);
  const ms = Math.round(performance.now() - started);
  timings.push({ filter: name, matched: expected.length, ms });
  console.log(`fleet filter at ${N} nodes: ${name} → ${expected.length} rows in ${ms} ms`);

  const wanted = new Map(expected.map((node) => [node.nodeId, node]));
  const rows = await renderedRows(page);
  expect(rows.length).toBeGreaterThan(0);
  for (const row of rows) {
    const node = wanted.get(row.nodeId);
    expect(node, `${row.nodeId} is shown but does not match ${name}`).toBeDefined();
    expect(row.presence, row.nodeId).toBe(node!.presence);
  }
}

const ALL_FILTERS = ['Search', 'Presence', 'Capability', 'Type', 'Location', 'Label', 'Session'];

async function clearFilters(page: Page): Promise<void> {
  for (const label of ALL_FILTERS) await setFilter(page, label, '');
}

describe('dashboard: 10 000 nodes', () => {
  it('the fleet view lists 10 000 nodes and every filter answers correctly (timings printed)', async () => {
    const { page } = browser;
    await signIn(page, server.url, server.operator.token);
    await navigate(page, 'Fleet');
    await waitForConnection(page, 'live');
    await expectCount(page, 'count-online', 6_000, 60_000);
    await expectCount(page, 'count-degraded', 2_000);
    await expectCount(page, 'count-offline', 2_000);
    await checkFilter(page, 'none', {}, () => true);
    await browser.screenshot('fleet-10k');

    const cases: [string, Record<string, string>, (node: Seeded) => boolean][] = [
      ['Presence=degraded', { Presence: 'degraded' }, (n) => n.presence === 'degraded'],
      ['Presence=offline', { Presence: 'offline' }, (n) => n.presence === 'offline'],
      ['Capability=gpu', { Capability: 'gpu' }, (n) => n.capabilities.includes('gpu')],
      ['Type=edge', { Type: 'edge' }, (n) => n.nodeType === 'edge'],
      ['Location=lab-c', { Location: 'lab-c' }, (n) => n.location === 'lab-c'],
      ['Label=env=prod', { Label: 'env=prod' }, (n) => n.labels.env === 'prod'],
      ['Session=ten thousand', { Session: sessionId }, (n) => n.inSession],
      ['Search="machine 12"', { Search: 'machine 12' }, (n) => n.name.includes('machine 12')],
    ];
    for (const [name, filters, accept] of cases) {
      await clearFilters(page);
      await checkFilter(page, name, filters, accept);
    }
    await browser.screenshot('fleet-10k-filtered');

    await clearFilters(page);
    await checkFilter(
      page,
      'Presence=online + Capability=gpu + Type=daemon + Label=rack=r3',
      { Presence: 'online', Capability: 'gpu', Type: 'daemon', Label: 'rack=r3' },
      (n) =>
        n.presence === 'online' &&
        n.capabilities.includes('gpu') &&
        n.nodeType === 'daemon' &&
        n.labels.rack === 'r3',
    );
    await clearFilters(page);
    await checkFilter(page, 'cleared', {}, () => true);

    const out = fileURLToPath(new URL('../../test-results/', import.meta.url));
    await mkdir(out, { recursive: true });
    await writeFile(`${out}filter-timings.json`, `${JSON.stringify(timings, null, 2)}\n`);
  });
});
