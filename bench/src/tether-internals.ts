/**
 * The one place the bench reaches into the control plane's source (it exports only the server
 * entry and the router type). Everything here is used as the server uses it: the embedded
 * PostgreSQL launcher, the migrations, the token helpers (256-bit tokens, SHA-256 at rest), the
 * issuing of a participant token (dashboards of the presence scenarios) and the staleness sweep,
 * timed directly against PostgreSQL.
 */
export { startEmbeddedPostgres } from '../../packages/control-plane/src/db/embedded.js';
export { runMigrations } from '../../packages/control-plane/src/db/migrate.js';
export { createDb, type Db } from '../../packages/control-plane/src/db/pool.js';
export { generateToken, hashToken } from '../../packages/control-plane/src/auth/tokens.js';
export { issueParticipantToken } from '../../packages/control-plane/src/auth/service.js';
export {
  sweepPresence,
  type SweepOptions,
} from '../../packages/control-plane/src/runtime-nodes/sweep.js';
export const CONTROL_PLANE_DIR = new URL('../../packages/control-plane/', import.meta.url);
