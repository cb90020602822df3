/** Formatting: aligned text tables for the terminal, Markdown for the results file. */
import type { MachineFacts } from './environment.js';
import { failedOf, type StepResult } from './load.js';
import type { FloorCheck, ScenarioResult, Table } from './scenario.js';

type Value = number | null | undefined;

export const num = (value: Value, digits = 0): string =>
  value == null || !Number.isFinite(value)
    ? '–'
    : value.toLocaleString('en-US', {
        minimumFractionDigits: digits,
        maximumFractionDigits: digits,
      });

export const ms = (value: Value): string =>
  value == null ? '–' : num(value, value < 10 ? 2 : value < 100 ? 1 : 0);

export const mb = (bytes: Value): string => num((bytes ?? NaN) / 1024 / 1024, 1);

export const pct = (share: Value): string => num((share ?? NaN) * 100, 1);

/** Tether / baseline, as "1.23×"; blank when either side is missing or zero. */
export const ratio = (t: Value, b: Value): string =>
  t == null || b == null || b === 0 ? '' : `${num(t / b, 2)}×`;

/** A column of a Tether-vs-baseline table: its cell, and the value its ratio row compares. */
export interface Column<R> {
  header: string;
  cell(r: R): string;
  compare?(r: R): Value;
}

/** A column showing `pick(r)` with `format`, compared in the ratio row unless `compare` is false. */
export function metric<R>(
  header: string,
  format: (v: Value) => string,
  pick: (r: R) => Value,
  compare = true,
): Column<R> {
  return { header, cell: (r) => format(pick(r)), ...(compare ? { compare: pick } : {}) };
}

/** Tether's row, the baseline's row, and their ratios (Tether / baseline), after `lead` cells. */
export function compareRows<R>(cols: Column<R>[], lead: Lead, t: R, b: R): string[][] {
  return [
    [...lead[0], ...cols.map((c) => c.cell(t))],
    [...lead[1], ...cols.map((c) => c.cell(b))],
    [...lead[2], ...cols.map((c) => (c.compare ? ratio(c.compare(t), c.compare(b)) : ''))],
  ];
}

type Lead = [string[], string[], string[]];

/** The lead cell of the rows of a comparison: the server. */
export const LEAD: Lead = [['tether'], ['baseline'], ['ratio T/B']];

/** The lead cells of a step's rows: its label, then the server. */
export const stepLead = (label: string, tether = 'tether', baseline = 'baseline'): Lead => [
  [label, tether],
  ['', baseline],
  ['', 'ratio T/B'],
];

/** A table: the `lead` headers, then the columns'. */
export const table = <R>(lead: string[], cols: Column<R>[], rows: string[][]): Table => ({
  headers: [...lead, ...cols.map((c) => c.header)],
  rows,
});

const fixed = (digits: number) => (v: Value) => num(v, digits);

/** The load table's columns (docs/performance.md, "Columns"). */
const LOAD: Column<StepResult>[] = [
  metric('offered/s', num, (s) => s.offeredRate, false),
  metric('achieved/s', num, (s) => s.achievedRate),
  metric('p50 ms', ms, (s) => s.latency.p50Ms),
  metric('p95 ms', ms, (s) => s.latency.p95Ms),
  metric('p99 ms', ms, (s) => s.latency.p99Ms),
  metric('max ms', ms, (s) => s.latency.maxMs),
  metric('failed', num, failedOf, false),
  metric('backlog', num, (s) => s.backlog.end, false),
  metric('srv CPU %', num, (s) => s.server?.cpuPercent),
  metric('srv RSS MB', mb, (s) => s.server?.rssMaxBytes),
  metric('loop p99 ms', ms, (s) => s.loopLag?.p99Ms),
  metric('PG CPU %', num, (s) => s.postgresCpuPercent),
  metric('gen CPU %', num, (s) => Math.max(...s.generatorCpuPercent), false),
  metric('others CPU %', num, (s) => s.othersCpuPercent, false),
  metric('HOT %', pct, (s) => s.writes.hotShare),
  metric('WAL B/beat', num, (s) => s.writes.walBytesPerBeat),
  metric('xact/beat', fixed(2), (s) => s.writes.transactionsPerBeat),
];

export const LOAD_HEADERS = ['step', 'server', ...LOAD.map((c) => c.header)];

/** A load step's rows: Tether, baseline, ratios. */
export const loadRows = (label: string, t: StepResult, b: StepResult): string[][] =>
  compareRows(LOAD, stepLead(label), t, b);

const isNumeric = (cell: string): boolean => /^[-–0-9.,×%]+$/.test(cell) && cell !== '';

/** Columns padded to their widest cell; numbers right-aligned. */
function renderText(table: Table): string {
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
function renderMarkdown(table: Table): string {
  const numeric = (i: number): boolean => {
    const cells = table.rows.map((r) => r[i] ?? '').filter((c) => c !== '');
    return cells.length > 0 && cells.every(isNumeric);
  };
  const row = (cells: string[]): string =>
    `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [
    row(table.headers),
    `| ${table.headers.map((_, i) => (numeric(i) ? '---:' : '---')).join(' | ')} |`,
    ...table.rows.map(row),
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

export function renderReport(results: BenchResults, format: 'text' | 'markdown'): string {
  const md = format === 'markdown';
  const render = md ? renderMarkdown : renderText;
  const heading = (text: string, level: number): string =>
    md ? `${'#'.repeat(level)} ${text}` : level === 1 ? `\n=== ${text} ===` : `\n--- ${text} ---`;
  const m = results.machine;
  const pg = m.postgresSettings;
  const parts = [
    heading(`Tether bench (${results.mode}) ${results.startedAt}`, 1),
    '',
    `Machine: ${m.cores} × ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.os}; Node ${m.node}; PostgreSQL ${m.postgres} ` +
      `(shared_buffers ${pg.shared_buffers ?? '?'}, synchronous_commit ${pg.synchronous_commit ?? '?'}, ` +
      `fsync ${pg.fsync ?? '?'}); commit ${m.commit ?? 'unknown'}`,
  ];
  for (const s of results.scenarios) {
    parts.push('', heading(`${s.name}: ${s.title}`, 2));
    for (const table of s.tables) parts.push('', render(table));
    if (s.notes.length > 0) parts.push('', ...s.notes.map((n) => `${md ? '- ' : '  * '}${n}`));
  }
  for (const f of results.failures) parts.push('', `FAILED ${f.name}: ${f.error}`);
  const floors: Table = {
    headers: ['scenario', 'floor', 'measured', 'met'],
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
