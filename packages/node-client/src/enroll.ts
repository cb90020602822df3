/**
 * Getting a node identity, over HTTP (public procedures, rate limited per address by the server):
 *  - `enrollWithKey`: operator first — an enrollment key minted by a participant (`device.enroll`);
 *  - `enrollBatch`: a fleet on one reusable key, up to 500 per call (`device.enrollBatch`);
 *  - `pair`: device first — `pairing.request`, show the code, poll `pairing.claim` until an
 *    operator approves (token), rejects or the request expires.
 * Retryable failures (rate_limited with the server's retryAfterMs, system.unavailable, network)
 * are retried with full-jitter backoff; everything else is thrown as a TetherError.
 */
import {
  CONTRACT_VERSION,
  DEVICE_ENROLL_BATCH_MAX,
  TetherError,
  type Capabilities,
  type DeviceEnrollBatchInput,
  type DeviceEnrollInput,
  type Labels,
  type Metadata,
} from '@tether/contracts';
import type { z } from 'zod';
import { Backoff } from './backoff.js';
import type { NodeCredentials } from './credentials.js';
import { PairingError, retryAfterMs, toTetherError } from './errors.js';
import { createHttpClient, type TetherClient } from './transport.js';
import { delay, normaliseBaseUrl } from './util.js';

export interface RetryOptions {
  /** Attempts in all (first try included). Default 5; `Infinity` retries until success or abort. */
  attempts?: number;
  /** Backoff window for failures without a server-given wait. */
  baseMs?: number;
  capMs?: number;
  random?: () => number;
  /** Called before each wait, with its length and why (e.g. `rate_limited`), to show it. */
  onWait?: (wait: { waitMs: number; code: string; attempt: number }) => void;
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error
    ? reason
    : new DOMException('The operation was aborted', 'AbortError');
}

/** Runs `call`, retrying retryable TetherErrors; throws the last error (or the abort reason). */
async function withRetries<T>(
  call: () => Promise<T>,
  retry: RetryOptions = {},
  signal?: AbortSignal,
): Promise<T> {
  const attempts = retry.attempts ?? 5;
  const backoff = new Backoff({
    baseMs: retry.baseMs ?? 500,
    capMs: retry.capMs ?? 10_000,
    ...(retry.random ? { random: retry.random } : {}),
  });
  for (let attempt = 1; ; attempt++) {
    if (signal?.aborted) throw abortError(signal);
    try {
      return await call();
    } catch (raw) {
      const error = toTetherError(raw);
      if (!error.retryable || attempt >= attempts) throw error;
      // The server's wait plus a little jitter, so a crowd does not return in the same instant.
      const serverWait = retryAfterMs(error);
      const wait = serverWait !== undefined ? serverWait + backoff.next() : backoff.next();
      retry.onWait?.({ waitMs: wait, code: error.code, attempt });
      if (!(await delay(wait, signal))) throw abortError(signal!);
    }
  }
}

export interface EnrollWithKeyOptions {
  /** Server base URL, http://host:port. */
  url: string;
  enrollmentKey: string;
  /** Choose the node id (`^[A-Za-z0-9][A-Za-z0-9._:-]*$`); the server generates one otherwise. */
  nodeId?: string;
  name: string;
  nodeType: string;
  platform?: string;
  location?: string;
  labels?: Labels;
  capabilities?: Capabilities;
  nodeVersion?: string;
  retry?: RetryOptions;
  signal?: AbortSignal;
  /** Reuse a client (e.g. many enrollments from one process). */
  client?: TetherClient;
}

/** `device.enroll`: returns the node's credentials (the token is shown exactly once). */
export async function enrollWithKey(options: EnrollWithKeyOptions): Promise<NodeCredentials> {
  const url = normaliseBaseUrl(options.url);
  const client = options.client ?? createHttpClient(url);
  const input: z.input<typeof DeviceEnrollInput> = {
    enrollmentKey: options.enrollmentKey,
    name: options.name,
    nodeType: options.nodeType,
    nodeVersion: options.nodeVersion ?? CONTRACT_VERSION,
    ...(options.nodeId !== undefined ? { nodeId: options.nodeId } : {}),
    ...(options.platform !== undefined ? { platform: options.platform } : {}),
    ...(options.location !== undefined ? { location: options.location } : {}),
    ...(options.labels !== undefined ? { labels: options.labels } : {}),
    ...(options.capabilities !== undefined ? { capabilities: options.capabilities } : {}),
  };
  const enrolled = await withRetries(
    () => client.device.enroll.mutate(input, options.signal ? { signal: options.signal } : {}),
    options.retry,
    options.signal,
  );
  return {
    url,
    nodeId: enrolled.nodeId,
    token: enrolled.nodeToken,
    ownerParticipantId: enrolled.ownerParticipantId,
  };
}

export type BatchNode = Omit<
  EnrollWithKeyOptions,
  'url' | 'enrollmentKey' | 'retry' | 'signal' | 'client'
>;

export interface EnrollBatchOptions {
  url: string;
  /** A reusable key (a single-use one enrolls a batch of one at most). */
  enrollmentKey: string;
  /** 1–DEVICE_ENROLL_BATCH_MAX (500) nodes. */
  nodes: readonly BatchNode[];
  retry?: RetryOptions;
  signal?: AbortSignal;
  client?: TetherClient;
}

/**
 * `device.enrollBatch`: a fleet on one reusable key in one call, all or none; the credentials
 * come back in the order of `nodes`. Several nodes on a single-use key →
 * `enrollment.key_single_use`, nothing enrolled.
 */
export async function enrollBatch(options: EnrollBatchOptions): Promise<NodeCredentials[]> {
  if (options.nodes.length < 1 || options.nodes.length > DEVICE_ENROLL_BATCH_MAX) {
    throw new RangeError(`enrollBatch: 1–${DEVICE_ENROLL_BATCH_MAX} nodes per call`);
  }
  const url = normaliseBaseUrl(options.url);
  const client = options.client ?? createHttpClient(url);
  const input: z.input<typeof DeviceEnrollBatchInput> = {
    enrollmentKey: options.enrollmentKey,
    nodes: options.nodes.map((node) => ({
      name: node.name,
      nodeType: node.nodeType,
      nodeVersion: node.nodeVersion ?? CONTRACT_VERSION,
      ...(node.nodeId !== undefined ? { nodeId: node.nodeId } : {}),
      ...(node.platform !== undefined ? { platform: node.platform } : {}),
      ...(node.location !== undefined ? { location: node.location } : {}),
      ...(node.labels !== undefined ? { labels: node.labels } : {}),
      ...(node.capabilities !== undefined ? { capabilities: node.capabilities } : {}),
    })),
  };
  const enrolled = await withRetries(
    () => client.device.enrollBatch.mutate(input, options.signal ? { signal: options.signal } : {}),
    options.retry,
    options.signal,
  );
  return enrolled.nodes.map((node) => ({
    url,
    nodeId: node.nodeId,
    token: node.nodeToken,
    ownerParticipantId: node.ownerParticipantId,
  }));
}

export interface PairingCodeInfo {
  requestId: string;
  expiresAt: Date;
}

export interface PairOptions {
  url: string;
  name: string;
  nodeType: string;
  platform?: string;
  nodeId?: string;
  metadata?: Metadata;
  /**
   * Reuse a claim secret (32–256 URL-safe characters) to resume a pairing after a restart: the
   * server updates the pending request instead of creating another. Generated by the server
   * when omitted.
   */
  claimSecret?: string;
  /** Show this code to the operator (it is what they approve). */
  onCode: (pairingCode: string, info: PairingCodeInfo) => void | Promise<void>;
  /** Milliseconds between claims. Default 3000 (the server allows 30 public calls a minute). */
  pollIntervalMs?: number;
  signal?: AbortSignal;
  retry?: RetryOptions;
}

/**
 * Device-first pairing. Resolves with the credentials once an operator approves; rejects with a
 * `PairingError` (`outcome`: rejected | expired | claimed), a TetherError, or the abort reason.
 */
export async function pair(options: PairOptions): Promise<NodeCredentials> {
  const url = normaliseBaseUrl(options.url);
  const client = createHttpClient(url);
  const signal = options.signal;
  const requested = await withRetries(
    () =>
      client.pairing.request.mutate({
        name: options.name,
        nodeType: options.nodeType,
        ...(options.platform !== undefined ? { platform: options.platform } : {}),
        ...(options.nodeId !== undefined ? { nodeId: options.nodeId } : {}),
        ...(options.metadata !== undefined ? { metadata: options.metadata } : {}),
        ...(options.claimSecret !== undefined ? { claimSecret: options.claimSecret } : {}),
      }),
    options.retry,
    signal,
  );
  await options.onCode(requested.pairingCode, {
    requestId: requested.requestId,
    expiresAt: requested.expiresAt,
  });
  const interval = options.pollIntervalMs ?? 3_000;
  // Polling outlives any single retry budget: keep retrying transient failures until the request
  // expires (the server says so) or the caller aborts.
  const pollRetry: RetryOptions = { ...options.retry, attempts: Infinity };
  for (;;) {
    if (signal?.aborted) throw abortError(signal);
    const claim = await withRetries(
      () =>
        client.pairing.claim.mutate({
          requestId: requested.requestId,
          claimSecret: requested.claimSecret,
        }),
      pollRetry,
      signal,
    );
    switch (claim.state) {
      case 'approved':
        if (!claim.nodeId || !claim.nodeToken || !claim.ownerParticipantId) {
          throw new TetherError('system.internal', 'An approved claim came without credentials.');
        }
        return {
          url,
          nodeId: claim.nodeId,
          token: claim.nodeToken,
          ownerParticipantId: claim.ownerParticipantId,
        };
      case 'rejected':
      case 'expired':
      case 'claimed':
        throw new PairingError(claim.state, requested.requestId);
      case 'pending':
        break;
    }
    if (!(await delay(interval, signal))) throw abortError(signal!);
  }
}
