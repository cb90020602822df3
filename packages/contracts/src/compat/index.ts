export type * from './types.js';
export {
  classifySchemaChange,
  classifyProcedureChange,
  classifyContractChanges,
  type SchemaChangeOptions,
} from './classify.js';
export {
  summarizeCompatChanges,
  versionBumpFor,
  checkContractVersionBump,
  type VersionBumpCheck,
} from './summary.js';
export {
  SNAPSHOT_INDEX_FILE,
  SNAPSHOT_COMMAND,
  snapshotFileName,
  buildProcedureSnapshot,
  renderSnapshotFiles,
  parseProcedureSnapshot,
  parseSnapshotIndex,
  checkSnapshotFiles,
  formatCompatChange,
  formatSnapshotCheck,
  type ProcedureSnapshot,
  type SnapshotIndex,
  type SnapshotCheck,
} from './snapshots.js';
export { stableJson } from './json.js';
