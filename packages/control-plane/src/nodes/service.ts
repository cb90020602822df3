/**
 * The device registry: persistent node identities. Registering a node creates its identity row
 * and its `offline` presence row in one transaction, so every known node is listed (offline)
 * until it beats, including after a server restart.
 */
import { randomUUID } from 'node:crypto';
import type { Capabilities, NodeId, ParticipantId } from '@tether/contracts';
import type { Db } from '../db/pool.js';

export interface RegisterNodeInput {
  nodeId?: string | undefined;
  ownerParticipantId: ParticipantId;
  name: string;
  nodeType: string;
  platform?: string | undefined;
  location?: string | undefined;
  labels?: Record<string, string> | undefined;
  metadata?: Record<string, unknown> | undefined;
  capabilities?: Capabilities | undefined;
  clientVersion?: string | undefined;
  /** SHA-256 of the node token; NULL until a pairing is claimed. */
  tokenHash?: Buffer | null | undefined;
}

export interface RegisteredNode {
  nodeId: NodeId;
  ownerParticipantId: ParticipantId;
  enrolledAt: string;
}

/** Server-generated ids are `node-<uuid>`: they satisfy the node-id pattern and never collide. */
export function generateNodeId(): NodeId {
  return `node-${randomUUID()}` as NodeId;
}

export async function registerNode(db: Db, input: RegisterNodeInput): Promise<RegisteredNode> {
  const nodeId = input.nodeId ?? generateNodeId();
  return db.tx(async (sql) => {
    const { rows } = await sql.query<{ node_id: string; owner_participant_id: string; enrolled_at: Date }>(
      `INSERT INTO nodes (node_id, owner_participant_id, name, node_type, platform, location, labels, metadata,
                          capabilities, client_version, token_hash)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
       RETURNING node_id, owner_participant_id, enrolled_at`,
      [
        nodeId,
        input.ownerParticipantId,
        input.name,
        input.nodeType,
        input.platform ?? null,
        input.location ?? null,
        JSON.stringify(input.labels ?? {}),
        JSON.stringify(input.metadata ?? {}),
        JSON.stringify(input.capabilities ?? {}),
        input.clientVersion ?? null,
        input.tokenHash ?? null,
      ],
    );
    await sql.query(`INSERT INTO runtime_node_presence (node_id, health_state) VALUES ($1, 'offline')`, [nodeId]);
    const row = rows[0]!;
    return {
      nodeId: row.node_id as NodeId,
      ownerParticipantId: row.owner_participant_id as ParticipantId,
      enrolledAt: row.enrolled_at.toISOString(),
    };
  });
}
