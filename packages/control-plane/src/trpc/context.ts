/**
 * The request context. HTTP: one per request. WebSocket: one per connection, authenticated
 * once at connect from `connectionParams.token`; the connection holds its credential from then
 * on (`credential`), and once that ends (revoked, expired, rotated, participant suspended) no
 * further call runs on it (procedures.ts) and the socket is closed (server/connections.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import {
  credentialScope,
  type HeldCredentialScope,
  type LiveCredentials,
  type ScopeLifetime,
} from '../auth/live-credentials.js';
import type { AuthService } from '../auth/service.js';
import type { CommandSignals } from '../commands/signals.js';
import type { Principal } from '../auth/principal.js';
import type { RevocationBus } from '../auth/revocations.js';
import type { Db } from '../db/pool.js';
import type { FeedHub } from '../events/hub.js';
import type { HeartbeatBatcher } from '../runtime-nodes/heartbeat-batch.js';
import type { MetricsHistoryPolicy } from '../runtime-nodes/metrics-history.js';
import type { RateLimiter } from '../limits/rate-limit.js';
import type { Metrics } from '../observability/metrics.js';
import { auditAuthFailure, credentialKind } from './audit.js';

export interface Settings {
  serverVersion: string;
  heartbeatIntervalMs: number;
  degradedAfterMs: number;
  offlineAfterMs: number;
  sweepIntervalMs: number;
  pairingTtlSeconds: number;
  /** The metrics history's shape (node.metrics). */
  metricsHistory: MetricsHistoryPolicy;
  /** Members may name node ids (TETHER_MEMBER_NODE_IDS); see nodes/service.ts. */
  memberNodeIds: boolean;
}

/** Long-lived dependencies, created once by the server. */
export interface Deps {
  db: Db;
  auth: AuthService;
  revocations: RevocationBus;
  /** Live uses of credentials (sockets, streams), ended when their credential ends. */
  credentials: LiveCredentials;
  /** This replica's fan-out of the fleet event feed. */
  feed: FeedHub;
  /** Wakes this replica's command streams (node deliveries, command watches). */
  commands: CommandSignals;
  /** Group commit for heartbeats. */
  heartbeats: HeartbeatBatcher;
  limits: RateLimiter;
  metrics: Metrics;
  settings: Settings;
  log: Logger;
  /** Flipped when shutdown starts: new calls are refused with a retryable system.unavailable. */
  lifecycle: { draining: boolean };
  /** This replica's open node connections (attach tells a stale attachment from a live one). */
  nodeConnections?: { hasOtherConnection(nodeId: string, connectionId: string | null): boolean };
}

export interface Context {
  deps: Deps;
  principal: Principal | null;
  /** A credential was presented but is unknown, expired or revoked. */
  credentialRejected: boolean;
  /**
   * The liveness of `principal`'s credential for this context (null without a principal):
   * WebSocket — held for the connection; HTTP — held from the first `signal()` (streams) until
   * the response closes.
   */
  credential: HeldCredentialScope | null;
  /** `MAJOR.MINOR` the client announced (header or connectionParams), if any. */
  clientContractVersion: string | null;
  transport: 'http' | 'ws';
  /** The real peer address (never a forwarded header unless TETHER_TRUST_PROXY). */
  peer: string;
  connectionId: string;
  log: Logger;
}

export interface RawCredentials {
  token: string | null;
  clientContractVersion: string | null;
  transport: 'http' | 'ws';
  peer: string;
  connectionId?: string;
  /** Already authenticated (a WebSocket upgrade with its credential in the request): no lookup. */
  principal?: Principal;
  /** How long this context's credential is held (see `Context.credential`). */
  lifetime: ScopeLifetime;
}

export async function buildContext(deps: Deps, raw: RawCredentials): Promise<Context> {
  const connectionId = raw.connectionId ?? randomUUID();
  // Made when first needed: most contexts (a heartbeat's, a resumed socket's) never log, and a
  // child logger re-serialises its bindings under the redaction paths (decision 0024).
  let log: Logger | undefined;
  const logger = (): Logger => (log ??= deps.log.child({ connectionId, transport: raw.transport }));
  let principal: Principal | null = null;
  let credentialRejected = false;
  if (raw.principal !== undefined) {
    principal = raw.principal;
  } else if (raw.token !== null) {
    principal = await deps.auth.authenticate(raw.token);
    credentialRejected = principal === null;
    // Every refused credential, on every transport, is decided here: one audit line each.
    if (credentialRejected) {
      auditAuthFailure(logger(), { peer: raw.peer, credential: credentialKind(raw.token) });
    }
  }
  return {
    deps,
    principal,
    credentialRejected,
    credential:
      principal === null ? null : credentialScope(deps.credentials, principal, raw.lifetime),
    clientContractVersion: raw.clientContractVersion,
    transport: raw.transport,
    peer: raw.peer,
    connectionId,
    get log() {
      return logger();
    },
  };
}

/** `Authorization: Bearer <token>` → token (anything else → null). */
export function bearerToken(header: string | string[] | undefined): string | null {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(value);
  return match ? match[1]! : '';
}
