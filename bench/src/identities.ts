/** Real node identities, made in bulk. */
import type { NodeIdentity } from './wire.js';
import { generateToken, hashToken, type Db } from './tether-internals.js';

const CHUNK = 5_000;

export interface Fleet {
  ownerParticipantId: string;
  nodes: NodeIdentity[];
}

export function benchNodeId(prefix: string, i: number): string {
  return `${prefix}-${String(i).padStart(6, '0')}`;
}

/** Creates the owner participant and `count` nodes named `<prefix>-000000`…; returns their tokens. */
export async function createFleet(db: Db, prefix: string, count: number): Promise<Fleet> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO participants (name, role) VALUES ($1, 'member') RETURNING id`,
    [`bench fleet ${prefix}`],
  );
  const ownerParticipantId = rows[0]!.id;
  const nodes: NodeIdentity[] = [];
  for (let start = 0; start < count; start += CHUNK) {
    const ids: string[] = [];
    const hashes: string[] = [];
    for (let i = start; i < Math.min(count, start + CHUNK); i++) {
      const token = generateToken('tnd_');
      const nodeId = benchNodeId(prefix, i);
      nodes.push({ nodeId, token });
      ids.push(nodeId);
      hashes.push(hashToken(token).toString('hex'));
    }
    await db.tx(async (sql) => {
      await sql.query(
        `INSERT INTO nodes (node_id, owner_participant_id, name, node_type, platform, token_hash)
         SELECT id, $3, 'bench ' || id, 'bench-agent', 'linux', decode(h, 'hex')
           FROM unnest($1::text[], $2::text[]) AS t(id, h)`,
        [ids, hashes, ownerParticipantId],
      );
      await sql.query(
        `INSERT INTO runtime_node_presence (node_id, health_state)
         SELECT id, 'offline' FROM unnest($1::text[]) AS t(id)`,
        [ids],
      );
    });
  }
  return { ownerParticipantId, nodes };
}
