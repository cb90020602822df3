/** Latency histograms: HDR (`hdr-histogram-js`, 3 significant digits) of microseconds. */
import * as hdr from 'hdr-histogram-js';

/** A histogram as it travels between processes (HDR compressed base64). */
type HistogramData = string;

export type LatencySummary = ReturnType<Histogram['summary']>;

export class Histogram {
  readonly #h = hdr.build({ numberOfSignificantValueDigits: 3 });

  recordMs(ms: number): void {
    this.#h.recordValue(Math.max(0, Math.round(ms * 1000)));
  }

  summary() {
    const h = this.#h;
    const empty = h.totalCount === 0;
    const at = (p: number): number => (empty ? NaN : h.getValueAtPercentile(p) / 1000);
    return {
      count: h.totalCount,
      meanMs: empty ? NaN : h.mean / 1000,
      p50Ms: at(50),
      p95Ms: at(95),
      p99Ms: at(99),
      maxMs: empty ? NaN : h.maxValue / 1000,
    };
  }

  toData(): HistogramData {
    return hdr.encodeIntoCompressedBase64(this.#h);
  }

  /** The histograms of several processes merged. */
  static from(parts: Iterable<HistogramData>): Histogram {
    const histogram = new Histogram();
    for (const part of parts) histogram.#h.add(hdr.decodeFromCompressedBase64(part));
    return histogram;
  }
}
