/**
 * A mergeable latency histogram with bounded relative error (log buckets with 64 linear
 * sub-buckets per power of two: ≤ 1.6 % error above 128 µs, exact below). Values are recorded
 * in microseconds; percentiles report the upper edge of their bucket (never flattering), the
 * maximum is exact. Workers ship it to the orchestrator as sparse [bucket, count] pairs.
 */

const LINEAR_LIMIT = 128; // values below this many µs get one bucket each
const SUB_BUCKET_BITS = 6; // 64 sub-buckets per octave above the linear range

export interface HistogramData {
  buckets: [number, number][];
  count: number;
  sumUs: number;
  maxUs: number;
}

export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

function bucketOf(us: number): number {
  if (us < LINEAR_LIMIT) return us;
  const octave = 31 - Math.clz32(us); // ≥ 7
  const shift = octave - SUB_BUCKET_BITS;
  const mantissa = us >>> shift; // in [64, 127]
  return LINEAR_LIMIT + (shift - 1) * 64 + (mantissa - 64);
}

function upperEdgeOf(bucket: number): number {
  if (bucket < LINEAR_LIMIT) return bucket;
  const offset = bucket - LINEAR_LIMIT;
  const shift = Math.floor(offset / 64) + 1;
  const mantissa = (offset % 64) + 64;
  return (mantissa + 1) * 2 ** shift - 1;
}

const MAX_US = 2 ** 31 - 1;

export class Histogram {
  readonly #counts = new Map<number, number>();
  #count = 0;
  #sumUs = 0;
  #maxUs = 0;

  recordMs(ms: number): void {
    const us = Math.min(MAX_US, Math.max(0, Math.round(ms * 1000)));
    const bucket = bucketOf(us);
    this.#counts.set(bucket, (this.#counts.get(bucket) ?? 0) + 1);
    this.#count++;
    this.#sumUs += us;
    if (us > this.#maxUs) this.#maxUs = us;
  }

  get count(): number {
    return this.#count;
  }

  merge(data: HistogramData): void {
    for (const [bucket, n] of data.buckets) {
      this.#counts.set(bucket, (this.#counts.get(bucket) ?? 0) + n);
    }
    this.#count += data.count;
    this.#sumUs += data.sumUs;
    if (data.maxUs > this.#maxUs) this.#maxUs = data.maxUs;
  }

  /** The value (ms) at or below which `p` percent of the recordings fall. */
  percentileMs(p: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.ceil((p / 100) * this.#count);
    let seen = 0;
    for (const bucket of [...this.#counts.keys()].sort((a, b) => a - b)) {
      seen += this.#counts.get(bucket) ?? 0;
      if (seen >= rank) return Math.min(upperEdgeOf(bucket), this.#maxUs) / 1000;
    }
    return this.#maxUs / 1000;
  }

  /** Percentiles of an empty histogram are NaN (rendered "–"), never a flattering 0. */
  summary(): LatencySummary {
    if (this.#count === 0) {
      return { count: 0, meanMs: NaN, p50Ms: NaN, p95Ms: NaN, p99Ms: NaN, maxMs: NaN };
    }
    return {
      count: this.#count,
      meanMs: this.#count === 0 ? 0 : this.#sumUs / this.#count / 1000,
      p50Ms: this.percentileMs(50),
      p95Ms: this.percentileMs(95),
      p99Ms: this.percentileMs(99),
      maxMs: this.#maxUs / 1000,
    };
  }

  toData(): HistogramData {
    return {
      buckets: [...this.#counts.entries()],
      count: this.#count,
      sumUs: this.#sumUs,
      maxUs: this.#maxUs,
    };
  }

  static from(parts: Iterable<HistogramData>): Histogram {
    const histogram = new Histogram();
    for (const part of parts) histogram.merge(part);
    return histogram;
  }
}
