/**
 * What replicas tell each other through PostgreSQL, on the one LISTEN connection of this
 * replica: `tether_events` (new fleet events, sent after each writer's commit, coalesced) wakes
 * the feed hub;
 * `tether_control` carries credential revocations (revoked or rotated tokens, revoked nodes,
 * suspended participants) so the replica holding a socket or stream on one ends it at once.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { CREDENTIAL_END_REASONS } from '@tether/contracts';
import { z } from 'zod';
import type { Revocation, RevocationBus } from '../auth/revocations.js';
import { PgListener, NOTIFY_SQL } from '../db/listener.js';
import type { Db } from '../db/pool.js';
import { FEED_CHANNEL } from '../events/append.js';
import type { FeedHub } from '../events/hub.js';

export const CONTROL_CHANNEL = 'tether_control';

/** NOTIFY payloads are limited to 8000 bytes: at most this many hashes per message. */
const HASHES_PER_MESSAGE = 64;

const ControlMessage = z.object({
  kind: z.literal('revocation'),
  origin: z.string(),
  credentialHashes: z.array(z.string().regex(/^[0-9a-f]{64}$/)).max(HASHES_PER_MESSAGE),
  nodeId: z.string().max(256).optional(),
  participantId: z.uuid().optional(),
  reason: z.enum(CREDENTIAL_END_REASONS).exclude(['credential_invalid']),
});

export interface Cluster {
  replicaId: string;
  listener: PgListener;
  close(): Promise<void>;
}

export interface ClusterOptions {
  databaseUrl: string;
  db: Db;
  feed: FeedHub;
  revocations: RevocationBus;
  log: Logger;
  /** The feed is re-read this often even without a notification (a lost one only delays). */
  feedPollMs: number;
}

export async function joinCluster(options: ClusterOptions): Promise<Cluster> {
  const { db, feed, revocations, log } = options;
  const replicaId = randomUUID();
  const listener = new PgListener({
    connectionString: options.databaseUrl,
    onError: (err) => log.warn({ err }, 'LISTEN connection error; reconnecting'),
    // Notifications sent while disconnected are gone: re-read the feed; revocations made
    // meanwhile are caught by the periodic socket revalidation.
    onReconnect: () => feed.poke(),
  });
  listener.on(FEED_CHANNEL, () => feed.notify());
  listener.on(CONTROL_CHANNEL, (payload) => {
    let message: z.infer<typeof ControlMessage>;
    try {
      message = ControlMessage.parse(JSON.parse(payload));
    } catch {
      log.warn('ignored a malformed control notification');
      return;
    }
    if (message.origin === replicaId) return;
    const revocation: Revocation = {
      credentialHashes: message.credentialHashes,
      reason: message.reason,
    };
    if (message.nodeId !== undefined) revocation.nodeId = message.nodeId;
    if (message.participantId !== undefined) revocation.participantId = message.participantId;
    revocations.deliver(revocation);
  });
  await listener.start();

  revocations.setForwarder((revocation) => {
    const hashes = revocation.credentialHashes;
    const chunks: string[][] = [];
    for (let i = 0; i < Math.max(hashes.length, 1); i += HASHES_PER_MESSAGE) {
      chunks.push(hashes.slice(i, i + HASHES_PER_MESSAGE));
    }
    for (const credentialHashes of chunks) {
      const message = { kind: 'revocation', origin: replicaId, ...revocation, credentialHashes };
      db.query(NOTIFY_SQL, [CONTROL_CHANNEL, JSON.stringify(message)]).catch((err: unknown) =>
        log.warn({ err }, 'could not notify other replicas of a revocation'),
      );
    }
  });

  const poll = setInterval(() => feed.poke(), options.feedPollMs);
  poll.unref();

  return {
    replicaId,
    listener,
    close: async () => {
      clearInterval(poll);
      revocations.setForwarder(null);
      await listener.close();
    },
  };
}
