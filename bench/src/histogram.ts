/**
 * Latency histograms: HDR histograms (`hdr-histogram-js`, 3 significant digits) of microseconds.
 */
import * as hdr from 'hdr-histogram-js';

/** A histogram as it travels between processes (HDR compressed base64). */
export type HistogramData = string;

export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

export class Histogram {
  readonly #h = hdr.build({ numberOfSignificantValueDigits: 3 });

  recordMs(ms: number): void {
    this.#h.recordValue(Math.max(0, Math.round(ms * 1000)));
  }

  get count(): number {
    return this.#h.totalCount;
  }

  merge(data: HistogramData): void {
    this.#h.add(hdr.decodeFromCompressedBase64(data));
  }

  summary(): LatencySummary {
    const h = this.#h;
    if (h.totalCount === 0) {
      return { count: 0, meanMs: NaN, p50Ms: NaN, p95Ms: NaN, p99Ms: NaN, maxMs: NaN };
    }
    const at = (p: number): number => h.getValueAtPercentile(p) / 1000;
    const count = h.totalCount;
    return {
      count,
      meanMs: h.mean / 1000,
      p50Ms: at(50),
      p95Ms: at(95),
      p99Ms: at(99),
      maxMs: h.maxValue / 1000,
    };
  }

  toData(): HistogramData {
    return hdr.encodeIntoCompressedBase64(this.#h);
  }

  static from(parts: Iterable<HistogramData>): Histogram {
    const histogram = new Histogram();
    for (const part of parts) histogram.merge(part);
    return histogram;
  }
}
