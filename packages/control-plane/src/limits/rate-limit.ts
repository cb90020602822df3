/**
 * Token buckets keyed by a string (a node or participant id). Memory is bounded: idle full
 * buckets are dropped, and the map is capped. The limits that must hold across replicas (per
 * peer address: public calls, failed authentications) live in PostgreSQL instead
 * (limits/shared-buckets.ts).
 */
import type { Db } from '../db/pool.js';
import { SharedBuckets } from './shared-buckets.js';

export interface BucketSpec {
  /** Tokens per minute (refill rate) and burst size. */
  perMinute: number;
  burst: number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

const MAX_KEYS = 200_000;

export class TokenBuckets {
  readonly #buckets = new Map<string, Bucket>();
  readonly #spec: BucketSpec;
  readonly #now: () => number;

  constructor(spec: BucketSpec, now: () => number = Date.now) {
    this.#spec = spec;
    this.#now = now;
  }

  /** Takes one token; returns 0 if allowed, else the milliseconds until one is available. */
  take(key: string, cost = 1): number {
    const now = this.#now();
    const ratePerMs = this.#spec.perMinute / 60_000;
    let bucket = this.#buckets.get(key);
    if (!bucket) {
      if (this.#buckets.size >= MAX_KEYS) this.#prune(now);
      bucket = { tokens: this.#spec.burst, updatedAt: now };
      this.#buckets.set(key, bucket);
    } else {
      bucket.tokens = Math.min(
        this.#spec.burst,
        bucket.tokens + (now - bucket.updatedAt) * ratePerMs,
      );
      bucket.updatedAt = now;
    }
    if (bucket.tokens >= cost) {
      bucket.tokens -= cost;
      return 0;
    }
    return Math.ceil((cost - bucket.tokens) / ratePerMs);
  }

  /** Remaining tokens right now (without taking). */
  peek(key: string): number {
    const bucket = this.#buckets.get(key);
    if (!bucket) return this.#spec.burst;
    const ratePerMs = this.#spec.perMinute / 60_000;
    return Math.min(this.#spec.burst, bucket.tokens + (this.#now() - bucket.updatedAt) * ratePerMs);
  }

  #prune(now: number): void {
    const ratePerMs = this.#spec.perMinute / 60_000;
    for (const [key, b] of this.#buckets) {
      if (b.tokens + (now - b.updatedAt) * ratePerMs >= this.#spec.burst) this.#buckets.delete(key);
    }
    if (this.#buckets.size >= MAX_KEYS) this.#buckets.clear();
  }
}

export interface RateLimiter {
  /** Public, unauthenticated calls (pairing, enrollment), per peer address; shared by replicas. */
  publicCalls: SharedBuckets;
  /** Failed authentications per peer address; when empty the peer is locked out. Shared. */
  authFailures: SharedBuckets;
  /** Heartbeats per node: in this process's memory (no database round trip per beat). */
  heartbeats: TokenBuckets;
  /** Authenticated mutations per principal, heartbeats excepted: in this process's memory. */
  mutations: TokenBuckets;
}

export function createRateLimiter(
  db: Db,
  options: {
    publicPerMinute: number;
    authFailuresPerMinute: number;
    heartbeatsPerMinute: number;
    mutationsPerMinute: number;
  },
): RateLimiter {
  return {
    publicCalls: new SharedBuckets(db, {
      scope: 'public',
      perMinute: options.publicPerMinute,
      burst: options.publicPerMinute,
    }),
    authFailures: new SharedBuckets(db, {
      scope: 'auth_failures',
      perMinute: options.authFailuresPerMinute,
      burst: options.authFailuresPerMinute,
    }),
    heartbeats: new TokenBuckets({
      perMinute: options.heartbeatsPerMinute,
      burst: Math.max(10, Math.ceil(options.heartbeatsPerMinute / 6)),
    }),
    mutations: new TokenBuckets({
      perMinute: options.mutationsPerMinute,
      burst: Math.max(10, Math.ceil(options.mutationsPerMinute / 6)),
    }),
  };
}
