/**
 * Who is calling. A principal is derived from a credential by the auth layer, never from a
 * request body; services compare body fields against it (`auth.principal_mismatch`).
 */
import {
  TetherError,
  type NodeId,
  type ParticipantId,
  type ParticipantRole,
} from '@tether/contracts';

export interface NodePrincipal {
  readonly kind: 'node';
  /** SHA-256 of the credential, hex: lets the transport close this credential's sockets. */
  readonly credentialHash?: string;
  readonly nodeId: NodeId;
  readonly ownerParticipantId: ParticipantId;
}

export interface ParticipantPrincipal {
  readonly kind: 'participant';
  readonly credentialHash?: string;
  readonly tokenId?: string;
  readonly participantId: ParticipantId;
  readonly role: ParticipantRole;
}

export type Principal = NodePrincipal | ParticipantPrincipal;

export function isAdmin(principal: ParticipantPrincipal): boolean {
  return principal.role === 'admin';
}

/** A node may act only as itself, on behalf of its owner. */
export function assertNodeSelf(
  principal: NodePrincipal,
  claimed: { nodeId: string; participantId?: string | undefined },
): void {
  if (claimed.nodeId !== principal.nodeId) {
    throw new TetherError('auth.principal_mismatch', 'nodeId does not match the credential.', {
      field: 'nodeId',
    });
  }
  if (
    claimed.participantId !== undefined &&
    claimed.participantId !== principal.ownerParticipantId
  ) {
    throw new TetherError('auth.principal_mismatch', "participantId is not the node's owner.", {
      field: 'participantId',
    });
  }
}
