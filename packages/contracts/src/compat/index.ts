export type * from './types.js';
export {
  classifySchemaChange,
  classifyProcedureChange,
  classifyContractChanges,
  type SchemaChangeOptions,
} from './classify.js';
export { summarizeCompatChanges, versionBumpFor } from './summary.js';
export {
  SNAPSHOT_INDEX_FILE,
  snapshotFileName,
  buildProcedureSnapshot,
  publishedJsonSchema,
  renderSnapshotFiles,
  parseProcedureSnapshot,
  parseSnapshotIndex,
  diffSnapshotFiles,
  readContracts,
  classifySnapshotChanges,
  formatCompatChange,
  type ProcedureSnapshot,
  type SnapshotIndex,
  type SnapshotSet,
  type SnapshotDiff,
  type ReadContracts,
} from './snapshots.js';
export {
  CHANGELOG_FILE,
  parseChangelog,
  markReleased,
  type Changelog,
  type ChangelogEntry,
} from './changelog.js';
export {
  SNAPSHOT_COMMAND,
  RELEASE_COMMAND,
  allowedVersionsAfter,
  checkContractGate,
  formatContractGate,
  type ContractGate,
  type ContractGateInput,
  type GateProblem,
  type GateRule,
  type RecordedRelease,
} from './gate.js';
export { stableJson } from './json.js';
