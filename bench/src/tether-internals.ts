/**
 * The one place the bench reaches past the control plane's server entry and router type, through
 * its `internals` export.
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
