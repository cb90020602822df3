/**
 * The named procedure builders. Each narrows `ctx` through `next({ ctx })`; middleware reads
 * `result.ok` after `await next()` and never wraps `next()` in try/catch.
 *   publicProcedure        anyone (still subject to the client-version ceiling)
 *   publicLimitedProcedure anyone, rate limited per peer address (pairing, enrollment)
 *   nodeProcedure          a node token (mutations rate limited per node)
 *   participantProcedure   a participant token (mutations rate limited per participant)
 *   adminProcedure         a participant token with role admin
 *   heartbeatLimitedNodeProcedure  a node token, heartbeat limit instead of the mutation limit
 */
import {
  CONTRACT_VERSION,
  TetherError,
  parseEventEnvelopeVersion,
  isEventEnvelopeVersion,
} from '@tether/contracts';
import type { Principal } from '../auth/principal.js';
import type { Context } from './context.js';
import { toTetherError, type TRPCError } from './error-formatter.js';
import { baseProcedure, middleware } from './init.js';

const SERVER_MAJOR = parseEventEnvelopeVersion(CONTRACT_VERSION).major;

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

/** A client whose contract MAJOR is above ours cannot be served correctly: the error, or null. */
export function clientVersionError(announced: string | null): TetherError | null {
  if (announced === null) return null;
  if (!isEventEnvelopeVersion(announced)) {
    return new TetherError('request.invalid', 'x-tether-client-version must be MAJOR.MINOR.', {
      clientVersion: announced.slice(0, 64),
    });
  }
  if (parseEventEnvelopeVersion(announced).major > SERVER_MAJOR) {
    return new TetherError(
      'version.ceiling_exceeded',
      `This server speaks contract ${CONTRACT_VERSION}.`,
      {
        serverContractVersion: CONTRACT_VERSION,
        clientVersion: announced,
      },
    );
  }
  return null;
}

const versionCeiling = middleware(({ ctx, next }) => {
  const error = clientVersionError(ctx.clientVersion);
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

export const publicProcedure = baseProcedure
  .use(observe)
  .use(refuseWhileDraining)
  .use(versionCeiling);

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
async function rejectUnauthenticated(ctx: Context): Promise<never> {
  if (ctx.credentialRejected) {
    const wait = await ctx.deps.limits.authFailures.take(ctx.peer);
    if (wait > 0) {
      throw new TetherError(
        'rate_limited',
        'Too many failed authentications from this address.',
        retryAfter(wait),
      );
    }
  }
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
