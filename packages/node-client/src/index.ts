/**
 * @tether/node-client: the SDK a runtime node (daemon, desktop agent, edge device) embeds, and
 * the simulator behind `tether-agent simulate` (a load generator for benches and demos).
 */
export type { TerminationReason } from './termination.js';
export { createTetherNode } from './node.js';
export type {
  DisconnectCause,
  EnrollmentOptions,
  NodeConnectionState,
  TetherNode,
  TetherNodeEvents,
  TetherNodeOptions,
  TetherNodeSnapshot,
  OnCommandOptions,
} from './node-types.js';
export {
  CommandAbortedError,
  type CommandContext,
  type CommandHandler,
  type CommandHandlerOptions,
  type CommandOutcome,
} from './commands.js';
export {
  builtinCapabilities,
  echoCapability,
  parseAllowList,
  shellExecCapability,
  systemMetricsCapability,
  type BuiltinCapability,
  type ShellExecOptions,
  type ShellExecOutput,
} from './builtins.js';
export {
  enrollBatch,
  enrollWithKey,
  pair,
  type BatchNode,
  type EnrollBatchOptions,
  type EnrollWithKeyOptions,
  type PairOptions,
  type PairingCodeInfo,
  type RetryOptions,
} from './enroll.js';
export {
  CREDENTIALS_FILE_MODE,
  CredentialsError,
  loadCredentials,
  saveCredentials,
  type NodeCredentials,
} from './credentials.js';
export {
  Backoff,
  BACKOFF_DEFAULTS,
  backoffCeiling,
  fullJitterDelay,
  type BackoffOptions,
} from './backoff.js';
export {
  PairingError,
  TERMINAL_CODES,
  isPairingError,
  isTerminal,
  isTransportError,
  toTetherError,
  type PairingOutcome,
} from './errors.js';
export { MetricsCollector, validateMetrics, type CpuTimes, type MetricsSource } from './metrics.js';
export {
  describeCause,
  distribution,
  type ChurnOptions,
  type Distribution,
  type LoopDelay,
  type Outage,
  type SimEvent,
  type SimEventType,
  type SimStatus,
  type SimSummary,
  type SimulateOptions,
  type SimulatedNode,
  type Simulation,
} from './simulate-types.js';
export { startSimulation } from './simulate.js';
export {
  Scheduler,
  ScheduledTask,
  processScheduler,
  type SchedulerClock,
  type SchedulerOptions,
} from './scheduler.js';
export { KeepAliveMonitor, processKeepAlive, type KeepAliveOptions } from './keepalive.js';
export { createHttpClient, type LossCause, type TetherClient } from './transport.js';
export { silentLogger, webSocketUrl, type TetherLogger } from './util.js';
export { TetherError, WS_CLOSE, isTerminalCloseCode, isTetherError } from '@tether/contracts';
