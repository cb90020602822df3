/**
 * What `system.info` answers a caller: this server's versions and liveness settings, and who the
 * caller is. The same answer travels in the WebSocket handshake (server/upgrade-handshake.ts), so
 * a resuming node needs no `system.info` call.
 */
import {
  CONTRACT_VERSION,
  SUPPORTED_CONTRACT_MAJORS,
  type SystemInfoOutput,
} from '@tether/contracts';
import type { z } from 'zod';
import type { Principal } from '../auth/principal.js';
import type { Settings } from './context.js';

export function systemInfo(
  s: Settings,
  principal: Principal | null,
): z.output<typeof SystemInfoOutput> {
  return {
    serverVersion: s.serverVersion,
    contractVersion: CONTRACT_VERSION,
    supportedContractMajors: { ...SUPPORTED_CONTRACT_MAJORS },
    heartbeatIntervalMs: s.heartbeatIntervalMs,
    degradedAfterMs: s.degradedAfterMs,
    offlineAfterMs: s.offlineAfterMs,
    sweepIntervalMs: s.sweepIntervalMs,
    caller:
      principal === null
        ? null
        : principal.kind === 'participant'
          ? { kind: 'participant', participantId: principal.participantId, role: principal.role }
          : { kind: 'node', nodeId: principal.nodeId },
  };
}
