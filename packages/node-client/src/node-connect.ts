/**
 * A node's connection loop: enroll (once, when started with an enrollment key), then one
 * connection at a time — open with the credential and the resume claim, resumed or attach →
 * capabilityupdate → beats — until the connection is lost; then the reconnect backoff (or the
 * wait the server asked for) and again, until stopped or a terminal condition (see `node.ts`).
 */
import {
  Capabilities as CapabilitiesSchema,
  EventEnvelopeVersion,
  SessionId as SessionIdSchema,
  TetherError,
  type AttachOutput,
  type ResumeClaim,
} from '@tether/contracts';
import { capabilitiesDigest } from '@tether/contracts/node';
import { ConnectionLost } from './call.js';
import type { NodeCredentials } from './credentials.js';
import { enrollWithKey } from './enroll.js';
import { retryAfterMs, toTetherError } from './errors.js';
import { isOnlineAttachment, type NodeCore } from './node-core.js';
import { processScheduler } from './scheduler.js';
import { terminationFor, type TerminationReason } from './termination.js';
import { Connection, type LossCause } from './transport.js';

/** The node's life after `start()`; resolves once it is stopped or terminated. */
export async function runNode(core: NodeCore): Promise<void> {
  if (!core.credentials) {
    const enrolled = await enroll(core);
    if (!enrolled) return;
  }
  while (!core.wake.signal.aborted && !core.termination) {
    const terminal = await connectOnce(core);
    if (terminal) {
      core.terminate(terminal);
      return;
    }
    if (core.wake.signal.aborted) return;
    const attempt = core.backoff.attempt;
    // The server said when to come back (its admission limit): then, plus a little jitter,
    // rather than the exponential window, which keeps its place for failures that say nothing.
    const serverWait = core.serverWaitMs;
    const wait =
      serverWait !== undefined
        ? serverWait + Math.floor(core.random() * core.backoff.baseMs)
        : core.backoff.next();
    core.nextAttemptAt = Date.now() + wait;
    core.setState('reconnecting');
    core.emitter.emit('reconnect_scheduled', { at: Date.now(), attempt, delayMs: wait });
    core.log.info({ nodeId: core.nodeId, attempt, delayMs: wait }, 'reconnecting after backoff');
    // On the shared scheduler: after an outage every node of the process waits out a backoff.
    await processScheduler().delay(wait, core.wake.signal);
    core.nextAttemptAt = null;
  }
}

async function enroll(core: NodeCore): Promise<boolean> {
  core.setState('enrolling');
  const enrollment = core.enrollment!;
  for (;;) {
    let credentials: NodeCredentials;
    try {
      credentials = await enrollWithKey({
        ...enrollment,
        url: core.url,
        nodeVersion: core.nodeVersion,
        ...(Object.keys(core.declared()).length > 0 ? { capabilities: core.declared() } : {}),
        signal: core.wake.signal,
        retry: { attempts: 1 },
      });
    } catch (raw) {
      if (core.wake.signal.aborted) return false;
      const error = toTetherError(raw);
      if (!error.retryable) {
        core.terminate({
          code: error.code,
          message: `enrollment failed: ${error.message}`,
          error,
        });
        return false;
      }
      // rate_limited says how long to wait; jitter on top keeps a crowd from returning at once.
      const wait = (retryAfterMs(error) ?? 0) + core.backoff.next();
      core.log.warn({ code: error.code, delayMs: wait }, 'enrollment failed; retrying');
      if (!(await processScheduler().delay(wait, core.wake.signal))) return false;
      continue;
    }
    core.credentials = credentials;
    core.backoff.reset();
    core.emitter.emit('enrolled', { at: Date.now(), nodeId: credentials.nodeId });
    try {
      await core.onEnrolled?.(credentials);
    } catch (error) {
      // Never enroll again (that would mint a second identity): stop, and say why.
      core.terminate({
        code: 'enrollment_not_saved',
        message: `enrolled as ${credentials.nodeId}, but onEnrolled failed: ${error instanceof Error ? error.message : String(error)}`,
      });
      return false;
    }
    return true;
  }
}

/** One connection, start to end. Returns a termination reason, or null to reconnect. */
async function connectOnce(core: NodeCore): Promise<TerminationReason | null> {
  const credentials = core.credentials!;
  const reconnect = core.connectAttempts > 0;
  const attempt = core.backoff.attempt;
  core.connectAttempts++;
  if (!reconnect) core.setState('connecting');
  const conn = new Connection({
    url: core.url,
    token: credentials.token,
    handshakeTimeoutMs: core.connectTimeoutMs,
    keepAliveIntervalMs: core.keepAliveIntervalMs,
    pongTimeoutMs: core.pongTimeoutMs,
    resume: resumeClaim(core),
  });
  core.conn = conn;
  core.ready = false;
  const startedAt = Date.now();
  core.emitter.emit('connecting', { at: startedAt, attempt, reconnect });

  let failure: TetherError | undefined;
  let cause: LossCause;
  const sequence = connectionSequence(core, conn, attempt, startedAt);
  core.connecting = sequence;
  try {
    await sequence;
    core.connecting = null;
    cause = await conn.lost;
  } catch (raw) {
    core.connecting = null;
    if (raw instanceof ConnectionLost) {
      cause = conn.lostCause ?? raw.loss;
    } else {
      failure = toTetherError(raw);
      cause = { kind: 'call_failed', code: failure.code, message: failure.message };
      conn.lose(cause);
      cause = conn.lostCause ?? cause;
    }
  }
  core.heartbeats.stop();
  core.commands.connectionEnded(conn);
  core.serverWaitMs = cause.kind === 'open_failed' ? cause.retryAfterMs : undefined;
  const wasReady = core.ready;
  const wasOnline = core.state === 'online' || core.state === 'attached';
  core.ready = false;
  core.backoff.disconnected();
  const at = Date.now();
  if (wasReady) {
    core.lostAt ??= at;
    core.emitter.emit('disconnected', { at, cause, wasOnline });
  } else if (cause.kind !== 'stopped') {
    core.emitter.emit('connect_failed', {
      at,
      attempt,
      cause,
      ...(failure !== undefined ? { error: failure } : {}),
    });
  }
  if (cause.kind !== 'stopped') {
    core.log.warn(
      { nodeId: credentials.nodeId, cause },
      wasReady ? 'connection lost' : 'connection attempt failed',
    );
  }
  // A stop closes the socket properly and waits for it. After the reconnect notification the
  // server is going away: the closing handshake is started but not waited for (a stopping
  // server may no longer read it; the socket is terminated after the grace period), so the
  // next attempt is not delayed by it. A dead or refused socket is simply dropped.
  if (cause.kind === 'reconnect_requested') void conn.dispose(true);
  else await conn.dispose(cause.kind === 'stopped');
  if (core.conn === conn) core.conn = null;

  return terminationFor(cause, failure);
}

/**
 * What this node was, for the next connection's upgrade request: its active attachment, the
 * session, its version, the digest of its declared capabilities and its health. Null before
 * the first attach (or without a session).
 */
function resumeClaim(core: NodeCore): ResumeClaim | null {
  const attachment = core.attachment;
  const sessionId = core.sessionId;
  if (sessionId === undefined || attachment === null) return null;
  if (!['registering', 'online', 'degraded'].includes(core.attachmentState ?? '')) return null;
  const parsedSession = SessionIdSchema.safeParse(sessionId);
  const version = EventEnvelopeVersion.safeParse(core.nodeVersion);
  const declared = CapabilitiesSchema.safeParse(core.declared());
  if (!parsedSession.success || !version.success || !declared.success) return null;
  return {
    attachmentId: attachment.attachmentId,
    sessionId: parsedSession.data,
    nodeVersion: version.data,
    // The digest of what the server stores: the capabilities as its schema parses them.
    capabilitiesDigest: capabilitiesDigest(declared.data),
    healthState: core.health,
  };
}

/**
 * The handshake answer (x-tether-handshake) replaces `system.info`; resumed → online at once;
 * otherwise attach (with `healthChanges` when capabilities are declared: online in the same call)
 * → capabilityupdate (only when still needed) → beats. Throws ConnectionLost or TetherError.
 */
async function connectionSequence(
  core: NodeCore,
  conn: Connection,
  attempt: number,
  startedAt: number,
): Promise<void> {
  const credentials = core.credentials!;
  await core.step(conn, () => conn.opened);
  core.emitter.emit('connected', { at: Date.now(), attempt, connectMs: Date.now() - startedAt });
  const handshake = conn.handshake;
  if (handshake !== null) {
    const { resumed: _r, reason: _why, state: _s, readOnly: _ro, ...info } = handshake;
    core.info = info;
  } else {
    // A server without the handshake answer: ask.
    core.info = await core.step(conn, () => conn.client.system.info.query());
  }
  if (core.wake.signal.aborted) return;
  core.connections++;
  const reconnect = core.connections > 1;
  const downtime = (): number | null => (core.lostAt === null ? null : Date.now() - core.lostAt);

  const resumed =
    handshake?.resumed === true && conn.claim !== null && core.attachment !== null
      ? {
          ...core.attachment,
          state: handshake.state ?? 'registering',
          readOnly: handshake.readOnly,
        }
      : null;
  if (handshake !== null && conn.claim !== null && resumed === null) {
    core.log.info(
      { nodeId: credentials.nodeId, reason: handshake.reason },
      'not resumed; attaching',
    );
  }
  const attached = (attachment: NonNullable<NodeCore['attachment']>, wasResumed: boolean) => {
    core.attachment = attachment;
    core.attachmentState = attachment.state;
    core.setReadOnly(attachment.readOnly);
    core.ready = true;
    core.setState('attached');
    core.emitter.emit('attached', {
      at: Date.now(),
      attachment,
      reconnect,
      resumed: wasResumed,
      downtimeMs: downtime(),
    });
  };
  const sessionId = core.sessionId;
  if (resumed !== null) {
    // Checked and bound by the server in the handshake: same attachment, nothing to send.
    attached(resumed, true);
  } else if (sessionId !== undefined) {
    const attachment = await attach(core, conn, sessionId);
    attached(attachment, false);
    // A re-attach of an attachment that is still online (e.g. after a server restart) keeps
    // its state and already refreshed the capabilities: declaring again would only double
    // the writes of a reconnect wave. Otherwise (registering, or another health) declare.
    const settled = attachment.state === core.health;
    if (
      !settled &&
      !core.readOnly &&
      Object.keys(core.declared()).length > 0 &&
      !core.wake.signal.aborted
    ) {
      try {
        await core.declare(conn, undefined, true);
      } catch (raw) {
        if (!(raw instanceof TetherError)) throw raw;
        if (raw.code === 'version.floor_exceeded') {
          // The floor rose between attach and declare: read-only, keep beating.
          core.setReadOnly(true);
        } else if (raw.code === 'runtimenode.capabilityupdate_conflict') {
          core.log.warn({ nodeId: credentials.nodeId, err: raw.message }, 'capabilities refused');
        } else {
          throw raw;
        }
      }
    }
  } else {
    if (Object.keys(core.declared()).length > 0) await core.declare(conn, undefined, true);
    core.ready = true;
  }
  core.backoff.connected();
  // Beat once now without a session (presence); with one, attach was the proof of life.
  if (core.sessionId === undefined) await core.heartbeats.beat(conn);
  else core.heartbeats.schedule(conn);
  const online = core.sessionId === undefined || isOnlineAttachment(core.attachmentState);
  if (online) {
    core.setState('online');
    core.emitter.emit('online', { at: Date.now(), reconnect, downtimeMs: downtime() });
  } else {
    core.setState('attached');
  }
  core.lostAt = null;
  core.syncCommands(conn);
}

/**
 * `runtimenode.attach`. The server supersedes the node's own stale attachment to another
 * session in the same call; a conflict that says the old attachment is not live (it went
 * stale meanwhile) is retried once at once, a live one surfaces (reconnect backoff).
 */
async function attach(core: NodeCore, conn: Connection, sessionId: string): Promise<AttachOutput> {
  const credentials = core.credentials!;
  const call = (): Promise<AttachOutput> => {
    const capabilities = core.declared();
    return core.step(conn, () =>
      conn.client.runtimenode.attach.mutate({
        sessionId,
        participantId: credentials.ownerParticipantId,
        nodeId: credentials.nodeId,
        nodeVersion: core.nodeVersion,
        capabilities,
        healthState: core.health,
        // Declared: online (or degraded) in the same call, no capabilityupdate after it.
        ...(Object.keys(capabilities).length > 0 ? { healthChanges: { state: core.health } } : {}),
      }),
    );
  };
  let attachment: AttachOutput;
  try {
    attachment = await call();
  } catch (raw) {
    if (!(raw instanceof TetherError) || raw.code !== 'runtimenode.attach_conflict') throw raw;
    const details = raw.details ?? {};
    const conflict = {
      attachmentId: typeof details.attachmentId === 'string' ? details.attachmentId : null,
      sessionId: typeof details.sessionId === 'string' ? details.sessionId : null,
      // A server that does not say is treated as live: retrying at once would not help.
      live: details.live !== false,
    };
    core.emitter.emit('attach_conflict', { at: Date.now(), ...conflict });
    if (conflict.live) {
      core.log.warn(
        { nodeId: credentials.nodeId, sessionId, conflict },
        'attach refused: another copy of this node is attached to another session; retrying after backoff',
      );
      throw raw;
    }
    attachment = await call();
  }
  if (attachment.superseded) {
    core.log.info(
      { nodeId: credentials.nodeId, sessionId, superseded: attachment.superseded },
      "attach superseded this node's stale attachment to another session",
    );
    core.emitter.emit('superseded', { at: Date.now(), ...attachment.superseded });
  }
  return attachment;
}
