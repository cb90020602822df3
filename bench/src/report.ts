/** Formatting: aligned text tables for the terminal, Markdown for the results file. */
import type { MachineFacts } from './environment.js';
import { failedOf, type StepResult } from './load.js';
import { columns, type FloorCheck, type ScenarioResult, type Table } from './scenario.js';

export function num(value: number | null | undefined, digits = 0): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

export function ms(value: number | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  return num(value, value < 10 ? 2 : value < 100 ? 1 : 0);
}

export function mb(bytes: number | null | undefined): string {
  return bytes === null || bytes === undefined ? '–' : num(bytes / 1024 / 1024, 1);
}

export function pct(share: number | null | undefined): string {
  return share === null || share === undefined ? '–' : num(share * 100, 1);
}

/** Tether / baseline, as "1.23×"; blank when either side is missing or zero. */
export function ratio(t: number | null | undefined, b: number | null | undefined): string {
  if (t === null || t === undefined || b === null || b === undefined || b === 0) return '';
  return `${num(t / b, 2)}×`;
}

export const LOAD_HEADERS = columns(
  'step|server|offered/s|achieved/s|p50 ms|p95 ms|p99 ms|max ms|failed|backlog|srv CPU %|' +
    'srv RSS MB|loop p99 ms|PG CPU %|gen CPU %|others CPU %|HOT %|WAL B/beat|xact/beat',
);

function loadRow(label: string, server: string, s: StepResult): string[] {
  return [
    label,
    server,
    num(s.offeredRate),
    num(s.achievedRate),
    ms(s.latency.p50Ms),
    ms(s.latency.p95Ms),
    ms(s.latency.p99Ms),
    ms(s.latency.maxMs),
    num(failedOf(s)),
    num(s.backlog.end),
    num(s.server?.cpuPercent),
    mb(s.server?.rssMaxBytes),
    ms(s.loopLag?.p99Ms),
    num(s.postgresCpuPercent),
    num(s.generatorCpuPercent.length ? Math.max(...s.generatorCpuPercent) : null),
    num(s.othersCpuPercent),
    pct(s.writes.hotShare),
    num(s.writes.walBytesPerBeat),
    num(s.writes.transactionsPerBeat, 2),
  ];
}

/** Tether's row, the baseline's row, and their ratios (Tether / baseline). */
export function loadRows(label: string, t: StepResult, b: StepResult): string[][] {
  return [
    loadRow(label, 'tether', t),
    loadRow('', 'baseline', b),
    [
      '',
      'ratio T/B',
      '',
      ratio(t.achievedRate, b.achievedRate),
      ratio(t.latency.p50Ms, b.latency.p50Ms),
      ratio(t.latency.p95Ms, b.latency.p95Ms),
      ratio(t.latency.p99Ms, b.latency.p99Ms),
      ratio(t.latency.maxMs, b.latency.maxMs),
      '',
      '',
      ratio(t.server?.cpuPercent, b.server?.cpuPercent),
      ratio(t.server?.rssMaxBytes, b.server?.rssMaxBytes),
      ratio(t.loopLag?.p99Ms, b.loopLag?.p99Ms),
      ratio(t.postgresCpuPercent, b.postgresCpuPercent),
      '',
      '',
      ratio(t.writes.hotShare, b.writes.hotShare),
      ratio(t.writes.walBytesPerBeat, b.writes.walBytesPerBeat),
      ratio(t.writes.transactionsPerBeat, b.writes.transactionsPerBeat),
    ],
  ];
}

const isNumeric = (cell: string): boolean => /^[-–0-9.,×%]+$/.test(cell) && cell !== '';

export function renderText(table: Table): string {
  const widths = table.headers.map((h, i) =>
    Math.max(h.length, ...table.rows.map((r) => (r[i] ?? '').length)),
  );
  const line = (cells: string[], header: boolean): string =>
    cells
      .map((c, i) => (!header && isNumeric(c) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [
    line(table.headers, true),
    widths.map((w) => '─'.repeat(w)).join('  '),
    ...table.rows.map((r) => line(r, false)),
  ].join('\n');
}

/** A column whose filled cells are all numbers (or ratios) is right-aligned. */
function numericColumn(table: Table, column: number): boolean {
  const cells = table.rows.map((r) => r[column] ?? '').filter((c) => c !== '');
  return cells.length > 0 && cells.every(isNumeric);
}

export function renderMarkdown(table: Table): string {
  const escape = (c: string): string => c.replace(/\|/g, '\\|');
  return [
    `| ${table.headers.map(escape).join(' | ')} |`,
    `| ${table.headers.map((_, i) => (numericColumn(table, i) ? '---:' : '---')).join(' | ')} |`,
    ...table.rows.map((r) => `| ${r.map(escape).join(' | ')} |`),
  ].join('\n');
}

export interface BenchResults {
  mode: 'quick' | 'full';
  startedAt: string;
  finishedAt: string;
  machine: MachineFacts;
  setup: Record<string, unknown>;
  scenarios: ScenarioResult[];
  failures: { name: string; error: string }[];
  floors: (FloorCheck & { scenario: string })[];
}

function machineLine(m: MachineFacts): string {
  const pg = m.postgresSettings;
  return (
    `${m.cores} × ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.os}; Node ${m.node}; PostgreSQL ${m.postgres} ` +
    `(shared_buffers ${pg.shared_buffers ?? '?'}, synchronous_commit ${pg.synchronous_commit ?? '?'}, ` +
    `fsync ${pg.fsync ?? '?'}); commit ${m.commit ?? 'unknown'}`
  );
}

export function renderReport(results: BenchResults, format: 'text' | 'markdown'): string {
  const md = format === 'markdown';
  const render = md ? renderMarkdown : renderText;
  const heading = (text: string, level: number): string =>
    md ? `${'#'.repeat(level)} ${text}` : level === 1 ? `\n=== ${text} ===` : `\n--- ${text} ---`;
  const parts = [
    heading(`Tether bench (${results.mode}) ${results.startedAt}`, 1),
    '',
    `Machine: ${machineLine(results.machine)}`,
  ];
  for (const s of results.scenarios) {
    parts.push('', heading(`${s.name}: ${s.title}`, 2));
    for (const table of s.tables) parts.push('', render(table));
    if (s.notes.length > 0) parts.push('', ...s.notes.map((n) => `${md ? '- ' : '  * '}${n}`));
  }
  for (const f of results.failures) parts.push('', `FAILED ${f.name}: ${f.error}`);
  const floors: Table = {
    headers: columns('scenario|floor|measured|met'),
    rows: results.floors.map((f) => [
      f.scenario,
      f.floor,
      f.measured,
      `${f.met ? 'yes' : 'NO'}${f.scaled ? ` (${f.scaled})` : ''}`,
    ]),
  };
  parts.push('', heading('Floors', 2), '', render(floors));
  return parts.join('\n');
}
