/**
 * A sparkline and a small line chart, drawn as SVG by hand: a polyline over at most a few hundred
 * points needs no chart library (decision 0011).
 */
export function Sparkline({
  values,
  max,
  label,
  width = 64,
  height = 18,
}: {
  values: number[];
  /** The top of the scale (e.g. 100 for percentages); default: the largest value. */
  max?: number;
  label: string;
  width?: number;
  height?: number;
}) {
  if (values.length < 2)
    return <svg className="spark" width={width} height={height} aria-hidden="true" />;
  const top = max ?? Math.max(...values, 1e-9);
  const step = width / (values.length - 1);
  const points = values
    .map(
      (v, i) =>
        `${(i * step).toFixed(1)},${(height - 1 - (Math.min(v, top) / top) * (height - 2)).toFixed(1)}`,
    )
    .join(' ');
  return (
    <svg
      className="spark"
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label={label}
    >
      <polyline points={points} fill="none" stroke="currentColor" strokeWidth="1.5" />
    </svg>
  );
}

export interface Series {
  name: string;
  /** [time, value] oldest first. */
  points: [Date, number][];
  unit: string;
  max?: number;
}

/** One series over time with its axis labels; the latest value in the title. */
export function LineChart({ series }: { series: Series }) {
  const W = 600;
  const H = 160;
  const pad = { l: 44, r: 8, t: 8, b: 22 };
  const pts = series.points;
  if (pts.length === 0) return <p className="muted">No {series.name.toLowerCase()} samples yet.</p>;
  const t0 = pts[0]![0].getTime();
  const t1 = Math.max(pts[pts.length - 1]![0].getTime(), t0 + 1);
  const top = series.max ?? Math.max(...pts.map((p) => p[1]), 1e-9);
  const x = (t: Date) => pad.l + ((t.getTime() - t0) / (t1 - t0)) * (W - pad.l - pad.r);
  const y = (v: number) => pad.t + (1 - Math.min(v, top) / top) * (H - pad.t - pad.b);
  const line = pts.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  const last = pts[pts.length - 1]![1];
  const fmt = (v: number) => (v >= 100 ? Math.round(v).toString() : v.toFixed(1));
  return (
    <figure className="chart-figure">
      <figcaption>
        {series.name}: {fmt(last)} {series.unit}
      </figcaption>
      <svg
        className="chart"
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-label={`${series.name} over the last ${pts.length} samples, latest ${fmt(last)} ${series.unit}`}
      >
        <line x1={pad.l} y1={pad.t} x2={pad.l} y2={H - pad.b} stroke="var(--line)" />
        <line x1={pad.l} y1={H - pad.b} x2={W - pad.r} y2={H - pad.b} stroke="var(--line)" />
        <text x={pad.l - 4} y={pad.t + 8} textAnchor="end" fontSize="10" fill="var(--muted)">
          {fmt(top)}
        </text>
        <text x={pad.l - 4} y={H - pad.b} textAnchor="end" fontSize="10" fill="var(--muted)">
          0
        </text>
        <text x={pad.l} y={H - 6} fontSize="10" fill="var(--muted)">
          {pts[0]![0].toLocaleTimeString()}
        </text>
        <text x={W - pad.r} y={H - 6} textAnchor="end" fontSize="10" fill="var(--muted)">
          {pts[pts.length - 1]![0].toLocaleTimeString()}
        </text>
        <polyline points={line} fill="none" stroke="currentColor" strokeWidth="1.5" />
        {pts.length === 1 && (
          <circle cx={x(pts[0]![0])} cy={y(pts[0]![1])} r="3" fill="currentColor" />
        )}
      </svg>
    </figure>
  );
}
