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
import { expectCount, navigate, signIn, waitForConnection } from './ui.js';

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
                     capabilities, node_version, token_hash)
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
           'cpuPercent', i % 100, 'memoryUsedBytes', (i % 16 + 1)::bigint * 268435456,
           'memoryTotalBytes', 17179869184, 'uptimeSeconds', i * 7) END
    FROM generate_series(0, $1::int - 1) AS i`;

const SEED_ATTACHMENTS = `
  INSERT INTO runtime_node_attachments (session_id, participant_id, node_id, capabilities,
                                        node_version, state)
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

interface ViewState {
  /** `row-count`: the rows loaded so far (the list loads pages as it scrolls). */
  loaded: number;
  /** The count's caption says every match is loaded ("matched", not "loaded"). */
  complete: boolean;
  counters: Record<Presence, number>;
  /** The rows rendered now (a virtualised list renders only those near the viewport). */
  rows: { nodeId: string; presence: string }[];
}

async function viewState(page: Page): Promise<ViewState> {
  return page.evaluate(() => {
    const count = document.querySelector('[data-testid="row-count"]');
    const counter = (name: string) =>
      Number(document.querySelector(`[data-testid="count-${name}"]`)?.textContent?.trim());
    return {
      loaded: Number(count?.textContent?.trim()),
      complete: /\bmatched\b/.test(count?.parentElement?.textContent ?? ''),
      counters: {
        online: counter('online'),
        degraded: counter('degraded'),
        offline: counter('offline'),
      },
      rows: [...document.querySelectorAll('[data-node-id]')].map((row) => ({
        nodeId: row.getAttribute('data-node-id') ?? '',
        presence:
          row.querySelector('[data-testid="presence"]')?.getAttribute('data-presence') ?? '',
      })),
    };
  });
}

type Presence = 'online' | 'degraded' | 'offline';

interface FilterCase {
  name: string;
  /** Filter label → value; the filters not named are cleared. */
  filters: Record<string, string>;
  /** What the filters other than Presence select. */
  match: (node: Seeded) => boolean;
  presence?: Presence;
}

/**
 * What is wrong with the view for `c` (null when it shows exactly the answer): the counters
 * (presence totals under every filter but Presence), the loaded count and its caption, and
 * every rendered row.
 */
function mismatch(view: ViewState, c: FilterCase): string | null {
  const base = nodes.filter(c.match);
  const expected = c.presence ? base.filter((n) => n.presence === c.presence) : base;
  for (const p of ['online', 'degraded', 'offline'] as const) {
    const want = base.filter((n) => n.presence === p).length;
    if (view.counters[p] !== want) return `count-${p} ${view.counters[p]}, expected ${want}`;
  }
  if (view.complete ? view.loaded !== expected.length : view.loaded >= expected.length) {
    return `row-count ${view.loaded} (${view.complete ? 'matched' : 'loaded'}), ${expected.length} match`;
  }
  if (expected.length > 0 && view.rows.length === 0) return 'no rows rendered';
  const wanted = new Map(expected.map((node) => [node.nodeId, node]));
  for (const row of view.rows) {
    const node = wanted.get(row.nodeId);
    if (!node) return `${row.nodeId} is shown but does not match`;
    if (row.presence !== node.presence) return `${row.nodeId} shows ${row.presence}`;
  }
  return null;
}

const timings: { filter: string; matched: number; ms: number }[] = [];

/**
 * Sets the filters of `c` (clearing the others), waits until the view shows exactly the answer
 * and records how long that took from the first keystroke or selection (the page's debounce
 * included: it is what the operator waits for).
 */
async function checkFilter(page: Page, c: FilterCase): Promise<void> {
  const changes = ALL_FILTERS.map((label) => [label, c.filters[label] ?? ''] as const).filter(
    ([label, value]) => (current.get(label) ?? '') !== value,
  );
  const started = performance.now();
  for (const [label, value] of changes) {
    await setFilter(page, label, value);
    current.set(label, value);
  }
  await expect
    .poll(async () => mismatch(await viewState(page), c), { timeout: 60_000, interval: 10 })
    .toBeNull();
  const ms = Math.round(performance.now() - started);
  const matched = nodes.filter((n) => c.match(n) && (!c.presence || n.presence === c.presence));
  timings.push({ filter: c.name, matched: matched.length, ms });
  console.log(
    `fleet filter at ${N} nodes: ${c.name} → ${matched.length} nodes, view updated in ${ms} ms`,
  );
}

const ALL_FILTERS = ['Search', 'Presence', 'Capability', 'Type', 'Location', 'Label', 'Session'];
/** What each filter control holds now (set only through `checkFilter`). */
const current = new Map<string, string>();

describe('dashboard: 10 000 nodes', () => {
  it('the fleet view lists 10 000 nodes and every filter answers correctly (timings printed)', async () => {
    const { page } = browser;
    await signIn(page, server.url, server.operator.token);
    await navigate(page, 'Fleet');
    await waitForConnection(page, 'live');
    await expectCount(page, 'count-online', 6_000, 60_000);
    await expectCount(page, 'count-degraded', 2_000);
    await expectCount(page, 'count-offline', 2_000);
    expect(
      mismatch(await viewState(page), { name: 'none', filters: {}, match: () => true }),
    ).toBeNull();
    await browser.screenshot('fleet-10k');

    const cases: FilterCase[] = [
      {
        name: 'Presence=degraded',
        filters: { Presence: 'degraded' },
        match: () => true,
        presence: 'degraded',
      },
      {
        name: 'Presence=offline',
        filters: { Presence: 'offline' },
        match: () => true,
        presence: 'offline',
      },
      {
        name: 'Capability=gpu',
        filters: { Capability: 'gpu' },
        match: (n) => n.capabilities.includes('gpu'),
      },
      { name: 'Type=edge', filters: { Type: 'edge' }, match: (n) => n.nodeType === 'edge' },
      {
        name: 'Location=lab-c',
        filters: { Location: 'lab-c' },
        match: (n) => n.location === 'lab-c',
      },
      {
        name: 'Label=env=prod',
        filters: { Label: 'env=prod' },
        match: (n) => n.labels.env === 'prod',
      },
      { name: 'Session=ten thousand', filters: { Session: sessionId }, match: (n) => n.inSession },
      {
        name: 'Search="machine 12"',
        filters: { Search: 'machine 12' },
        match: (n) => n.name.includes('machine 12'),
      },
      {
        name: 'Presence=online + Capability=gpu + Type=daemon + Label=rack=r3',
        filters: { Presence: 'online', Capability: 'gpu', Type: 'daemon', Label: 'rack=r3' },
        match: (n) =>
          n.capabilities.includes('gpu') && n.nodeType === 'daemon' && n.labels.rack === 'r3',
        presence: 'online',
      },
      { name: 'all filters cleared', filters: {}, match: () => true },
    ];
    for (const c of cases) {
      await checkFilter(page, c);
      if (c.name === 'Search="machine 12"') await browser.screenshot('fleet-10k-filtered');
    }

    // Scrolled to the end, the list loads every match of a filter, page by page, and no more.
    const session = cases.find((c) => c.name.startsWith('Session'))!;
    await checkFilter(page, session);
    const scroller = page.getByLabel('Node rows, scrollable');
    await expect
      .poll(
        async () => {
          await scroller.evaluate((el) => el.scrollTo(0, el.scrollHeight));
          const view = await viewState(page);
          return view.complete ? view.loaded : -1;
        },
        { timeout: 60_000, interval: 100 },
      )
      .toBe(nodes.filter(session.match).length);
    expect(mismatch(await viewState(page), session)).toBeNull();

    const out = fileURLToPath(new URL('../../test-results/', import.meta.url));
    await mkdir(out, { recursive: true });
    await writeFile(`${out}filter-timings.json`, `${JSON.stringify(timings, null, 2)}\n`);
  });
});
