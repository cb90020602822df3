/**
 * What the bench uses besides the server's entry (`@tether/control-plane/internals`), each as
 * the server uses it: the embedded PostgreSQL launcher, the migrations, the pool, the token
 * helpers (256-bit tokens, SHA-256 at rest), the issuing of a participant token, the heartbeat batcher (the WAL probe) and the
 * staleness sweep (timed directly against PostgreSQL). Not an API for anything else.
 */
export { issueParticipantToken } from './auth/participant-tokens.js';
export { generateToken, hashToken } from './auth/tokens.js';
export { startEmbeddedPostgres } from './db/embedded.js';
export { runMigrations } from './db/migrate.js';
export { createDb, type Db } from './db/pool.js';
export { HeartbeatBatcher } from './runtime-nodes/heartbeat-batch.js';
export { sweepPresence, type SweepOptions } from './runtime-nodes/sweep.js';

/** This package's directory (where `tsx src/server/cli.ts serve` runs the real server). */
export const PACKAGE_DIR = new URL('../', import.meta.url);
