/** The one place the bench reaches past the control plane's public entries (its `internals`). */
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
} from '@tether/control-plane/internals';
