/** Display helpers: relative times, bytes, durations, percentages. */

export function ago(date: Date | null | undefined, now = Date.now()): string {
  if (date === null || date === undefined) return '—';
  const s = Math.round((now - date.getTime()) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

export function dateTime(date: Date | null | undefined): string {
  if (date === null || date === undefined) return '—';
  return date.toLocaleString();
}

export function bytes(n: number | undefined): string {
  if (n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 10 || u === 0 ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}

export function duration(seconds: number | undefined): string {
  if (seconds === undefined) return '—';
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m`;
  return `${s}s`;
}

export function percent(n: number | undefined): string {
  return n === undefined ? '—' : `${n.toFixed(n < 10 ? 1 : 0)} %`;
}

export function memoryPercent(
  m: { memoryUsedBytes?: number | undefined; memoryTotalBytes?: number | undefined } | null,
): number | undefined {
  if (m?.memoryUsedBytes === undefined || m.memoryTotalBytes === undefined) return undefined;
  if (m.memoryTotalBytes <= 0) return undefined;
  return (100 * m.memoryUsedBytes) / m.memoryTotalBytes;
}

export function shortId(id: string): string {
  return id.length > 12 ? `${id.slice(0, 8)}…` : id;
}

/** "key=value" pairs separated by commas or new lines; a message naming the first bad one. */
export function parseLabels(text: string): Record<string, string> | string {
  const labels: Record<string, string> = {};
  for (const part of text.split(/[\n,]/)) {
    const t = part.trim();
    if (t === '') continue;
    const eq = t.indexOf('=');
    if (eq <= 0) return `"${t}" is not key=value`;
    labels[t.slice(0, eq).trim()] = t.slice(eq + 1).trim();
  }
  return labels;
}
