/** Builders for test data, going through the real services wherever one exists. */
import { randomBytes } from 'node:crypto';
import type { Capabilities, ParticipantRole, SessionId, SessionRole } from '@tether/contracts';
import type { NodePrincipal, ParticipantPrincipal } from '../src/auth/principal.js';
import type { Db } from '../src/db/pool.js';
import { registerNode } from '../src/nodes/service.js';
import { createParticipant } from '../src/participants/service.js';
import { addMember, createSession } from '../src/sessions/service.js';

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

export async function makeParticipant(
  db: Db,
  role: ParticipantRole = 'member',
): Promise<ParticipantPrincipal> {
  const p = await createParticipant(db, { name: uniqueName('participant'), role });
  return { kind: 'participant', participantId: p.participantId, role: p.role };
}

export async function makeSession(
  db: Db,
  owner: ParticipantPrincipal,
  minNodeVersion?: string,
): Promise<SessionId> {
  const session = await createSession(db, owner, { name: uniqueName('session'), minNodeVersion });
  return session.sessionId;
}

export async function addMemberAs(
  db: Db,
  owner: ParticipantPrincipal,
  sessionId: SessionId,
  member: ParticipantPrincipal,
  role: SessionRole,
  state: 'pending' | 'active' | 'suspended' | 'revoked' = 'active',
): Promise<void> {
  await addMember(db, owner, { sessionId, participantId: member.participantId, role, state });
}

export async function makeNode(
  db: Db,
  owner: ParticipantPrincipal,
  nodeId?: string,
): Promise<NodePrincipal> {
  const node = await registerNode(db, {
    nodeId: nodeId ?? uniqueName('node'),
    ownerParticipantId: owner.participantId,
    name: 'test node',
    nodeType: 'daemon',
    tokenHash: randomBytes(32),
  });
  return { kind: 'node', nodeId: node.nodeId, ownerParticipantId: node.ownerParticipantId };
}

export const GPU: Capabilities = { gpu: { description: 'CUDA device', version: '12.0' } };

export function attachInput(
  node: NodePrincipal,
  sessionId: SessionId,
  overrides: { nodeVersion?: string; capabilities?: Capabilities } = {},
) {
  return {
    sessionId,
    participantId: node.ownerParticipantId,
    nodeId: node.nodeId,
    nodeVersion: (overrides.nodeVersion ?? '1.0') as never,
    capabilities: overrides.capabilities ?? GPU,
    healthState: 'online' as const,
  };
}

/**
 * Ages a node's last beat by `seconds` using the database clock (no sleeps), as if it had gone
 * silent then: a node that came online before its last beat did so at least that long ago too.
 */
export async function ageHeartbeat(db: Db, nodeId: string, seconds: number): Promise<void> {
  await db.query(
    `UPDATE runtime_node_presence
        SET last_heartbeat_at = now() - make_interval(secs => $2),
            online_since = LEAST(online_since, now() - make_interval(secs => $2))
      WHERE node_id = $1`,
    [nodeId, seconds],
  );
}

export async function presenceOf(db: Db, nodeId: string) {
  const { rows } = await db.query<{
    health_state: string;
    last_heartbeat_at: Date | null;
    online_since: Date | null;
    changed_at: Date;
  }>(
    `SELECT health_state, last_heartbeat_at, online_since, changed_at FROM runtime_node_presence WHERE node_id = $1`,
    [nodeId],
  );
  return rows[0];
}

export async function attachmentRow(db: Db, nodeId: string, sessionId: string) {
  const { rows } = await db.query<Record<string, unknown>>(
    `SELECT * FROM runtime_node_attachments WHERE node_id = $1 AND session_id = $2`,
    [nodeId, sessionId],
  );
  return rows[0];
}

export async function tableSnapshot(
  db: Db,
  table: 'session_memberships' | 'sessions' | 'nodes' | 'runtime_node_attachments',
) {
  const { rows } = await db.query(`SELECT * FROM ${table} ORDER BY 1`);
  return rows;
}

export const SECONDS = { degradedAfterMs: 30_000, offlineAfterMs: 60_000 };
