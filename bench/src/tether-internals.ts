/**
 * The one place the bench reaches past the control plane's server entry and router type, through
 * its `internals` export. Everything here is used as the server uses it: the embedded
 * PostgreSQL launcher, the migrations, the token helpers (256-bit tokens, SHA-256 at rest), the
 * issuing of a participant token (dashboards of the presence scenarios) and the staleness sweep,
 * timed directly against PostgreSQL.
 */
export {
  createDb,
  generateToken,
  hashToken,
  HeartbeatBatcher,
  issueParticipantToken,
  runMigrations,
  startEmbeddedPostgres,
  sweepPresence,
  PACKAGE_DIR as CONTROL_PLANE_DIR,
  type Db,
  type SweepOptions,
} from '@tether/control-plane/internals';
