/**
 * Audit lines: one JSON line with `"audit":true` for every security-relevant decision, written
 * in one place — the `audit` middleware (procedures.ts) for the procedures listed here, whatever
 * the transport (tRPC over HTTP or WebSocket, REST), and `auditAuthFailure` for every credential
 * the server refuses (context.ts). A line names the action, the outcome (`ok` or the error
 * code), who acted (principal kind and ids, peer address, connection) and what it acted on —
 * ids only, picked from a fixed list of fields, so no token, key, claim secret or pairing code
 * ever reaches it.
 *
 * A new security-relevant procedure is added to `AUDITED_PROCEDURES` (a test checks every entry
 * names a procedure that exists).
 */
import type { Logger } from 'pino';
import type { Principal } from '../auth/principal.js';

export const AUDITED_PROCEDURES: ReadonlySet<string> = new Set([
  'participant.create',
  'participant.suspend',
  'participant.resume',
  'token.create',
  'token.revoke',
  'node.revoke',
  'node.rotateToken',
  'runtimenode.revoke',
  'enrollment.createKey',
  'enrollment.revokeKey',
  'device.enroll',
  'device.enrollBatch',
  'pairing.request',
  'pairing.approve',
  'pairing.reject',
  'pairing.claim',
  'session.raiseFloor',
  'membership.add',
  'membership.update',
  'membership.remove',
]);

/** The only fields of an input or output an audit line may carry: ids and decisions. */
const TARGET_FIELDS = [
  'participantId',
  'tokenId',
  'keyId',
  'nodeId',
  'sessionId',
  'requestId',
  'ownerParticipantId',
  'role',
  'state',
  'minNodeVersion',
  'reusable',
] as const;

function pickTargets(value: unknown, into: Record<string, unknown>): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return;
  const record = value as Record<string, unknown>;
  for (const key of TARGET_FIELDS) {
    const v = record[key];
    if (typeof v === 'string') into[key] = v.slice(0, 256);
    else if (typeof v === 'boolean' || typeof v === 'number') into[key] = v;
  }
}

/** Who acted: kind and ids, never the credential. */
export function actorOf(principal: Principal | null): Record<string, unknown> {
  if (principal === null) return { kind: 'anonymous' };
  if (principal.kind === 'node') {
    return { kind: 'node', nodeId: principal.nodeId };
  }
  return {
    kind: 'participant',
    participantId: principal.participantId,
    role: principal.role,
    tokenId: principal.tokenId,
  };
}

export interface AuditCall {
  log: Logger;
  procedure: string;
  principal: Principal | null;
  peer: string;
  /** `ok` or the Tether error code. */
  outcome: string;
  input: unknown;
  output: unknown;
}

export function auditCall(call: AuditCall): void {
  const target: Record<string, unknown> = {};
  pickTargets(call.input, target);
  // The output adds what the call created (a tokenId, a keyId, a nodeId), never its secret.
  if (call.outcome === 'ok') {
    pickTargets(call.output, target);
    // A batch enrollment: the node ids it created.
    const nodes = (call.output as { nodes?: unknown } | null | undefined)?.nodes;
    if (Array.isArray(nodes)) {
      target.nodeIds = nodes
        .map((n) => (n as { nodeId?: unknown } | null)?.nodeId)
        .filter((id): id is string => typeof id === 'string');
    }
  }
  const level = call.outcome === 'ok' ? 'info' : 'warn';
  call.log[level](
    {
      audit: true,
      action: call.procedure,
      outcome: call.outcome,
      actor: actorOf(call.principal),
      peer: call.peer,
      target,
    },
    `audit ${call.procedure} ${call.outcome}`,
  );
}

/** A presented credential the server does not accept (unknown, expired, revoked, suspended). */
export function auditAuthFailure(log: Logger, detail: { peer: string; credential: string }): void {
  log.warn(
    {
      audit: true,
      action: 'auth.failed',
      outcome: 'auth.unauthenticated',
      reason: 'credential unknown, expired or revoked',
      // The kind of credential by its public prefix (tpt_, tnd_), never more of it.
      credential: detail.credential,
      peer: detail.peer,
    },
    'audit auth.failed',
  );
}

/** `tpt_…` → `tpt_`; anything else → `other`. */
export function credentialKind(token: string): string {
  const prefix = /^(tpt_|tnd_|tek_)/.exec(token)?.[1];
  return prefix ?? 'other';
}
