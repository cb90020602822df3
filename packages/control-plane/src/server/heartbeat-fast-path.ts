/**
 * What the two heartbeat fast paths share (WebSocket frames, ws-heartbeat.ts; plain HTTP POSTs,
 * http-heartbeat.ts). A fleet's steady traffic is heartbeats, and through tRPC each one pays the
 * generic call machinery — the middleware chain copies the call's options at every step — for
 * checks a beat from a healthy node always passes (figures: docs/performance.md).
 *
 * `admitBeat` says whether a beat is certain to pass every check of `runtimenode.heartbeat`'s
 * procedure: a node credential that has not ended, an accepted contract version, not draining,
 * input valid under the contract's own schema, `nodeId` = the credential's node, under the
 * per-node rate limit (whose token it then takes). A beat it does not admit goes to tRPC
 * unchanged, so every refusal keeps one source of truth: the procedure. `serveBeat` then hands
 * the beat to the same service the procedure calls, with the same metrics and logs.
 */
import { HeartbeatInput } from '@tether/contracts';
import type { NodePrincipal } from '../auth/principal.js';
import { queueFull, queueRetryAfterMs } from '../runtime-nodes/heartbeat-batch.js';
import { heartbeat } from '../runtime-nodes/service.js';
import type { Context } from '../trpc/context.js';
import { TRPCError } from '../trpc/error-formatter.js';
import { rootConfig } from '../trpc/init.js';
import { contractVersionError, recordCall } from '../trpc/procedures.js';

export const HEARTBEAT_PROCEDURE = 'runtimenode.heartbeat';

/**
 * A beat's input read as the router's transformer (superjson) reads it, without its copy: a
 * payload with no `meta` is its `json` unchanged (superjson would deep-copy it first, and the
 * schema parse that follows builds a fresh object anyway). Throws as superjson does.
 */
export function beatInput(raw: unknown): unknown {
  if (typeof raw === 'object' && raw !== null && 'json' in raw && !('meta' in raw)) {
    return raw.json;
  }
  return rootConfig.transformer.input.deserialize(raw);
}

/** The last contract version announced and found acceptable: a fleet announces one or two. */
let acceptedVersion: string | null = null;

export function versionAccepted(announced: string | null): boolean {
  if (announced === null || announced === acceptedVersion) return true;
  if (contractVersionError(announced) !== null) return false;
  acceptedVersion = announced;
  return true;
}

export interface AdmittedBeat {
  principal: NodePrincipal;
  input: HeartbeatInput;
}

/**
 * The beat, when the procedure would certainly accept it from `ctx`'s caller; null leaves it to
 * tRPC. `principal` is the node the transport holds for the caller (a socket's may be replaced
 * by a rotation after its context was built).
 */
export function admitBeat(
  ctx: Context,
  principal: Context['principal'] | undefined,
  input: unknown,
): AdmittedBeat | null {
  if (principal?.kind !== 'node' || principal !== ctx.principal) return null;
  if (ctx.deps.lifecycle.draining || ctx.credential?.ended) return null;
  if (!versionAccepted(ctx.clientContractVersion)) return null;
  const parsed = HeartbeatInput.safeParse(input);
  if (!parsed.success || parsed.data.nodeId !== principal.nodeId) return null;
  const limiter = ctx.deps.limits.heartbeats;
  if (limiter.peek(principal.nodeId) < 1) return null;
  limiter.take(principal.nodeId);
  return { principal, input: parsed.data };
}

/** What a refusal counts as in the call metrics (one object: a flood creates no errors). */
let queueFullError: TRPCError | undefined;

/** The refusal of a beat while the batcher's queue is full (the same object every time). */
export function queueFullRefusal(): TRPCError {
  return (queueFullError ??= new TRPCError({
    code: 'SERVICE_UNAVAILABLE',
    cause: queueFull(queueRetryAfterMs()),
  }));
}

/**
 * Serves an admitted beat: null once it is queued for writing, else the error the procedure
 * would have thrown (`queueFullRefusal()` itself while the queue is full). Counted and timed as
 * a call of the procedure.
 */
export async function serveBeat(
  ctx: Context,
  beat: AdmittedBeat,
  connectionId: string | null,
): Promise<TRPCError | null> {
  const started = process.hrtime.bigint();
  let error: TRPCError | null = null;
  if (ctx.deps.heartbeats.full) {
    // Refused as the service would, without building an error per beat: this is the answer an
    // overloaded server gives thousands of times a second.
    error = queueFullRefusal();
  } else {
    try {
      await heartbeat(
        ctx.deps.db,
        beat.principal,
        beat.input,
        { connectionId },
        ctx.deps.heartbeats,
      );
    } catch (cause) {
      error =
        cause instanceof TRPCError
          ? cause
          : new TRPCError({ code: 'INTERNAL_SERVER_ERROR', cause });
    }
  }
  recordCall(ctx, HEARTBEAT_PROCEDURE, started, error);
  return error;
}
