/**
 * The named procedure builders. Each narrows `ctx` through `next({ ctx })`; middleware reads
 * `result.ok` after `await next()` and never wraps `next()` in try/catch.
 *   publicProcedure        anyone (a client announcing a contract MAJOR we do not serve is refused)
 *   publicLimitedProcedure anyone, rate limited per peer address (pairing, enrollment)
 *   nodeProcedure          a node token (mutations rate limited per node)
 *   participantProcedure   a participant token (mutations rate limited per participant)
 *   adminProcedure         a participant token with role admin
 *   heartbeatLimitedNodeProcedure  a node token, heartbeat limit instead of the mutation limit
 */
import {
  CONTRACT_VERSION,
  SUPPORTED_CONTRACT_MAJORS,
  TetherError,
  parseEventEnvelopeVersion,
  isEventEnvelopeVersion,
} from '@tether/contracts';
import { TRPCError, tracked } from '@trpc/server';
import { isTrackedEnvelope } from '@trpc/server/unstable-core-do-not-import';
import type { z } from 'zod';
import { credentialEnded } from '../auth/live-credentials.js';
import type { Principal } from '../auth/principal.js';
import type { Context } from './context.js';
import { AUDITED_PROCEDURES, auditCall } from './audit.js';
import { toTetherError } from './error-formatter.js';
import { baseProcedure, middleware } from './init.js';
import { shareOutput } from './transformer.js';

/**
 * Counts and times one call, and logs a failure (internal errors at error level). Shared by the
 * procedures (the `observe` middleware) and the WebSocket heartbeat fast path.
 */
export function recordCall(
  ctx: Pick<Context, 'deps' | 'transport' | 'log'>,
  path: string,
  started: bigint,
  error: TRPCError | null,
): void {
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const code = error === null ? 'ok' : toTetherError(error).code;
  ctx.deps.metrics.rpcRequests.inc({ procedure: path, code, transport: ctx.transport });
  ctx.deps.metrics.rpcDuration.observe({ procedure: path, transport: ctx.transport }, seconds);
  if (error !== null) {
    const level = code === 'system.internal' ? 'error' : 'debug';
    ctx.log[level](
      { procedure: path, code, err: code === 'system.internal' ? error.cause : undefined },
      'call failed',
    );
  }
}

const observe = middleware(async ({ ctx, path, next }) => {
  const started = process.hrtime.bigint();
  const result = await next();
  recordCall(ctx, path, started, result.ok ? null : result.error);
  return result;
});

/**
 * The audit line of a security-relevant procedure (audit.ts `AUDITED_PROCEDURES`): its outcome,
 * whatever refused it on the way (authentication, permission, rate limit, the service itself).
 */
const audit = middleware(async ({ ctx, path, getRawInput, next }) => {
  if (!AUDITED_PROCEDURES.has(path)) return next();
  const result = await next();
  auditCall({
    log: ctx.log,
    procedure: path,
    principal: ctx.principal,
    peer: ctx.peer,
    outcome: result.ok ? 'ok' : toTetherError(result.error).code,
    input: await getRawInput().catch(() => undefined),
    output: result.ok ? result.data : undefined,
  });
  return result;
});

const MIN_MAJOR = BigInt(SUPPORTED_CONTRACT_MAJORS.min);
const MAX_MAJOR = BigInt(SUPPORTED_CONTRACT_MAJORS.max);

/**
 * A client announcing a contract MAJOR this server does not serve cannot be served correctly:
 * below the supported range → `version.unsupported`, above it → `version.ceiling_exceeded`,
 * both naming the range. Returns the error, or null (no announcement, or a supported MAJOR).
 */
export function contractVersionError(announced: string | null): TetherError | null {
  if (announced === null) return null;
  if (!isEventEnvelopeVersion(announced)) {
    return new TetherError('request.invalid', 'x-tether-client-version must be MAJOR.MINOR.', {
      clientContractVersion: announced.slice(0, 64),
    });
  }
  const major = parseEventEnvelopeVersion(announced).major;
  if (major >= MIN_MAJOR && major <= MAX_MAJOR) return null;
  const range =
    MIN_MAJOR === MAX_MAJOR
      ? `contract MAJOR ${MAX_MAJOR}`
      : `contract MAJORs ${MIN_MAJOR} to ${MAX_MAJOR}`;
  const details = {
    serverContractVersion: CONTRACT_VERSION,
    supportedContractMajors: { ...SUPPORTED_CONTRACT_MAJORS },
    clientContractVersion: announced,
  };
  return major < MIN_MAJOR
    ? new TetherError(
        'version.unsupported',
        `This server no longer serves contract ${announced}: it serves ${range} (contract ${CONTRACT_VERSION}).`,
        details,
      )
    : new TetherError(
        'version.ceiling_exceeded',
        `This server serves ${range} (contract ${CONTRACT_VERSION}).`,
        details,
      );
}

const versionGate = middleware(({ ctx, next }) => {
  const error = contractVersionError(ctx.clientContractVersion);
  if (error) throw error;
  return next();
});

/** A call that arrives after shutdown began is refused (retryable), so clients move elsewhere. */
const refuseWhileDraining = middleware(({ ctx, next }) => {
  if (ctx.deps.lifecycle.draining) {
    throw new TetherError(
      'system.unavailable',
      'The server is shutting down; retry (another replica).',
    );
  }
  return next();
});

/**
 * The verdict on each event object, per schema. The feed hub fans the same event object out to
 * every subscriber, so with 1 000 dashboards an event is parsed once, not 1 000 times.
 */
const parsedEvents = new WeakMap<z.ZodType, WeakMap<object, z.ZodSafeParseResult<unknown>>>();

function parseEvent(schema: z.ZodType, value: unknown): unknown {
  let parsed: z.ZodSafeParseResult<unknown> | undefined;
  if (typeof value === 'object' && value !== null) {
    let bySchema = parsedEvents.get(schema);
    if (!bySchema) parsedEvents.set(schema, (bySchema = new WeakMap()));
    parsed = bySchema.get(value);
    if (!parsed) {
      bySchema.set(value, (parsed = schema.safeParse(value)));
      // The same parsed event goes to every subscriber: serialised once too.
      if (parsed.success) shareOutput(parsed.data);
    }
  } else {
    parsed = schema.safeParse(value);
  }
  if (!parsed.success) {
    throw new TRPCError({
      code: 'INTERNAL_SERVER_ERROR',
      message: 'Subscription event failed its contract schema',
      cause: parsed.error,
    });
  }
  return parsed.data;
}

async function* parseEach(source: AsyncIterable<unknown>, schema: z.ZodType) {
  for await (const value of source) {
    if (isTrackedEnvelope(value)) {
      const [id, data] = value;
      yield tracked(id, parseEvent(schema, data));
    } else {
      yield parseEvent(schema, value);
    }
  }
}

/**
 * What `.output()` does for a query, for each value a subscription yields: parsed with the
 * subscription's `meta.eventOutput` (undeclared keys dropped); a value that fails ends the
 * subscription with `system.internal` instead of reaching the client. A subscription that
 * declares no event schema is refused.
 */
const parseEvents = middleware(async ({ type, meta, next }) => {
  const result = await next();
  if (type !== 'subscription' || !result.ok) return result;
  const schema = meta?.eventOutput;
  if (schema === undefined) {
    throw new TRPCError({
      code: 'INTERNAL_SERVER_ERROR',
      message: 'This subscription declares no event schema (meta.eventOutput).',
    });
  }
  return { ...result, data: parseEach(result.data as AsyncIterable<unknown>, schema) };
});

/**
 * Nothing more runs on a connection whose credential ended (revoked, expired, rotated, its
 * participant suspended), not even a public call: from the moment the server decided, until the
 * socket is gone, every message on it gets `auth.unauthenticated` (see server/connections.ts).
 */
const refuseEndedCredential = middleware(({ ctx, next }) => {
  if (ctx.credential?.ended) {
    throw (
      (ctx.credential.signal().reason as TetherError | undefined) ??
      credentialEnded('credential_invalid')
    );
  }
  return next();
});

export const publicProcedure = baseProcedure
  .use(observe)
  .use(audit)
  .use(refuseEndedCredential)
  .use(refuseWhileDraining)
  .use(versionGate)
  .use(parseEvents);

/**
 * The signal a long-lived call (a subscription, an event stream) observes: the client going
 * away (`signal`, ends the stream quietly) or the caller's credential ending (aborts with
 * `auth.unauthenticated`, which the stream ends with).
 */
export function streamSignal(ctx: Context, signal: AbortSignal | undefined): AbortSignal {
  const credential = ctx.credential?.signal();
  const signals = [signal, credential].filter((s): s is AbortSignal => s !== undefined);
  return signals.length === 1 ? signals[0]! : AbortSignal.any(signals);
}

function retryAfter(ms: number): Record<string, unknown> {
  return { retryAfterMs: ms };
}

/** Public calls per peer address, one budget across replicas (PostgreSQL). */
export const publicLimitedProcedure = publicProcedure.use(async ({ ctx, next }) => {
  const wait = await ctx.deps.limits.publicCalls.take(ctx.peer);
  if (wait > 0)
    throw new TetherError('rate_limited', 'Too many requests from this address.', retryAfter(wait));
  return next();
});

/**
 * A call that presented a credential the server does not accept. Each one takes a token from the
 * peer address's failure budget (shared by replicas); with the budget empty the address is
 * locked out: `rate_limited` with `retryAfterMs` on every such call until a token is back, not
 * counted again meanwhile. A *valid* credential from a locked-out address is never refused for
 * others' failures (behind one NAT, one bad client must not lock the fleet out): the lockout
 * slows guessing, it does not block the address.
 */
export async function chargeRejectedCredential(ctx: Context): Promise<void> {
  if (!ctx.credentialRejected) return;
  const wait = await ctx.deps.limits.authFailures.take(ctx.peer);
  if (wait > 0) {
    throw new TetherError(
      'rate_limited',
      'Too many failed authentications from this address.',
      retryAfter(wait),
    );
  }
}

async function rejectUnauthenticated(ctx: Context): Promise<never> {
  await chargeRejectedCredential(ctx);
  throw new TetherError(
    'auth.unauthenticated',
    ctx.credentialRejected
      ? 'The credential is unknown, expired or revoked.'
      : 'A bearer token is required.',
  );
}

const authenticatedNode = publicProcedure.use(async ({ ctx, next }) => {
  const principal = ctx.principal;
  if (!principal) return rejectUnauthenticated(ctx);
  if (principal.kind !== 'node')
    throw new TetherError('auth.forbidden', 'This call needs a node token.');
  return next({ ctx: { ...ctx, principal: principal } });
});

const authenticatedParticipant = publicProcedure.use(async ({ ctx, next }) => {
  const principal = ctx.principal;
  if (!principal) return rejectUnauthenticated(ctx);
  if (principal.kind !== 'participant')
    throw new TetherError('auth.forbidden', 'This call needs a participant token.');
  return next({ ctx: { ...ctx, principal: principal } });
});

function principalKey(principal: Principal): string {
  return principal.kind === 'node' ? `n:${principal.nodeId}` : `p:${principal.participantId}`;
}

/**
 * Mutations per principal (participant or node id), in this replica's memory: a brake on one
 * credential flooding writes (one HTTP batch used to create a thousand sessions). Queries and
 * subscriptions are not counted; heartbeats have their own limit.
 */
const limitMutations = middleware(({ ctx, type, next }) => {
  if (type !== 'mutation' || ctx.principal === null) return next();
  const wait = ctx.deps.limits.mutations.take(principalKey(ctx.principal));
  if (wait > 0)
    throw new TetherError('rate_limited', 'Too many writes by this credential.', retryAfter(wait));
  return next();
});

export const nodeProcedure = authenticatedNode.use(limitMutations);

export const participantProcedure = authenticatedParticipant.use(limitMutations);

export const adminProcedure = participantProcedure.use(({ ctx, next }) => {
  if (ctx.principal.role !== 'admin')
    throw new TetherError('auth.forbidden', 'This call needs an admin.');
  return next();
});

/** Heartbeats per node: a node beating far above its cadence is throttled. */
export const heartbeatLimitedNodeProcedure = authenticatedNode.use(({ ctx, next }) => {
  const wait = ctx.deps.limits.heartbeats.take(ctx.principal.nodeId);
  if (wait > 0)
    throw new TetherError(
      'rate_limited',
      'Heartbeats far above the advertised cadence.',
      retryAfter(wait),
    );
  return next();
});
