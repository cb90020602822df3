/** Real node identities, made in bulk. */
import type { NodeIdentity } from './wire.js';
import { generateToken, hashToken, type Db } from './tether-internals.js';

const CHUNK = 5_000;

export type Fleet = Awaited<ReturnType<typeof createFleet>>;

/** Creates the owner participant and `count` nodes named `<prefix>-000000`…; returns their tokens. */
export async function createFleet(db: Db, prefix: string, count: number) {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO participants (name, role) VALUES ($1, 'member') RETURNING id`,
    [`bench fleet ${prefix}`],
  );
  const ownerParticipantId = rows[0]!.id;
  const nodes: NodeIdentity[] = [];
  for (let start = 0; start < count; start += CHUNK) {
    const chunk = Array.from({ length: Math.min(count, start + CHUNK) - start }, (_, i) => ({
      nodeId: `${prefix}-${String(start + i).padStart(6, '0')}`,
      token: generateToken('tnd_'),
    }));
    nodes.push(...chunk);
    const ids = chunk.map((n) => n.nodeId);
    const hashes = chunk.map((n) => hashToken(n.token).toString('hex'));
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
