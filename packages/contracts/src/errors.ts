/**
 * The closed error registry: every code Tether can return, with its HTTP status, tRPC code,
 * whether a client may retry, and a one-line description. Server and clients share it.
 * Invariant: a code's HTTP status always equals the status tRPC derives from its tRPC code.
 */

export type TrpcErrorCode =
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'PRECONDITION_FAILED'
  | 'PAYLOAD_TOO_LARGE'
  | 'TOO_MANY_REQUESTS'
  | 'INTERNAL_SERVER_ERROR'
  | 'SERVICE_UNAVAILABLE';

export interface ErrorSpec {
  readonly httpStatus: number;
  readonly trpcCode: TrpcErrorCode;
  readonly retryable: boolean;
  readonly description: string;
}

export const TRPC_CODE_HTTP_STATUS: Readonly<Record<TrpcErrorCode, number>> = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PRECONDITION_FAILED: 412,
  PAYLOAD_TOO_LARGE: 413,
  TOO_MANY_REQUESTS: 429,
  INTERNAL_SERVER_ERROR: 500,
  SERVICE_UNAVAILABLE: 503,
};

function spec(trpcCode: TrpcErrorCode, retryable: boolean, description: string): ErrorSpec {
  return { httpStatus: TRPC_CODE_HTTP_STATUS[trpcCode], trpcCode, retryable, description };
}

export const ERROR_REGISTRY = {
  'auth.unauthenticated': spec(
    'UNAUTHORIZED',
    false,
    'No credential, or the credential is unknown, expired or revoked.',
  ),
  'auth.forbidden': spec(
    'FORBIDDEN',
    false,
    'The credential is valid but lacks the role this call needs.',
  ),
  'auth.principal_mismatch': spec(
    'FORBIDDEN',
    false,
    'A node or participant named in the request is not the one the credential belongs to.',
  ),
  'request.invalid': spec(
    'BAD_REQUEST',
    false,
    'The input failed validation; details list the field paths.',
  ),
  'request.malformed': spec('BAD_REQUEST', false, 'The request body or query is not valid JSON.'),
  'request.too_large': spec(
    'PAYLOAD_TOO_LARGE',
    false,
    'The request body or message exceeds the size limit.',
  ),
  'request.batch_too_large': spec(
    'PAYLOAD_TOO_LARGE',
    false,
    'The batch carries more calls than the server accepts at once (details.calls, details.maxCalls); send fewer per batch.',
  ),
  rate_limited: spec(
    'TOO_MANY_REQUESTS',
    true,
    'Too many requests for this credential, connection or address; retry after details.retryAfterMs.',
  ),
  'system.unavailable': spec(
    'SERVICE_UNAVAILABLE',
    true,
    'The server is draining, overloaded or cannot reach its database; retry later.',
  ),
  'system.internal': spec(
    'INTERNAL_SERVER_ERROR',
    true,
    'An unexpected server error; no internals are exposed.',
  ),
  'request.unknown_procedure': spec('NOT_FOUND', false, 'No procedure with this path exists.'),
  'token.not_found': spec('NOT_FOUND', false, 'No such token visible to the caller.'),
  'enrollment.key_invalid': spec('UNAUTHORIZED', false, 'The enrollment key is unknown.'),
  'enrollment.key_expired': spec('FORBIDDEN', false, 'The enrollment key has expired.'),
  'enrollment.key_spent': spec(
    'FORBIDDEN',
    false,
    'The single-use enrollment key was already used.',
  ),
  'enrollment.key_revoked': spec('FORBIDDEN', false, 'The enrollment key was revoked.'),
  'enrollment.key_single_use': spec(
    'CONFLICT',
    false,
    'A batch of several nodes needs a reusable enrollment key; this one is single-use. Nothing was enrolled.',
  ),
  'enrollment.key_not_found': spec(
    'NOT_FOUND',
    false,
    'No such enrollment key visible to the caller.',
  ),
  'pairing.not_found': spec(
    'NOT_FOUND',
    false,
    'No such pairing request (or the claim secret does not match; the two are indistinguishable).',
  ),
  'pairing.expired': spec('CONFLICT', false, 'The pairing request expired before it was decided.'),
  'pairing.not_pending': spec('CONFLICT', false, 'The pairing request was already decided.'),
  'pairing.code_ambiguous': spec(
    'CONFLICT',
    false,
    'No pending request has this pairing code and several past ones did; decide by requestId.',
  ),
  'events.cursor_expired': spec(
    'PRECONDITION_FAILED',
    false,
    'The lastEventId is older than the retained feed (or unknown to this server): reload state, then subscribe without it.',
  ),
  'session.not_found': spec(
    'NOT_FOUND',
    false,
    'No such session, or the caller is not a member (the two are indistinguishable).',
  ),
  'session.permission_denied': spec(
    'FORBIDDEN',
    false,
    'The caller is a member but not an owner of the session.',
  ),
  'session.floor_not_monotonic': spec(
    'CONFLICT',
    false,
    'The new minimum node version is lower than the current floor; floors only rise.',
  ),
  'membership.not_found': spec(
    'NOT_FOUND',
    false,
    'The participant is not a member of the session.',
  ),
  'membership.already_exists': spec(
    'CONFLICT',
    false,
    'The participant is already a member of the session.',
  ),
  'membership.last_owner': spec(
    'CONFLICT',
    false,
    'The change would leave the session without an active owner.',
  ),
  'participant.not_found': spec('NOT_FOUND', false, 'No such participant.'),
  'participant.suspend_self': spec(
    'FORBIDDEN',
    false,
    'A participant cannot suspend themselves; another admin must.',
  ),
  'node.not_found': spec('NOT_FOUND', false, 'No such node visible to the caller.'),
  'node.id_taken': spec('CONFLICT', false, 'A node with this id is already registered.'),
  'node.id_not_allowed': spec(
    'FORBIDDEN',
    false,
    "Only an administrator's enrollment key or approval may choose the node id (unless the server lets members choose); omit nodeId for a generated one.",
  ),
  'runtimenode.permission_denied': spec(
    'FORBIDDEN',
    false,
    "The node's owner is not an active owner, collaborator or runtime contributor of the session (or it does not exist).",
  ),
  'runtimenode.attach_conflict': spec(
    'CONFLICT',
    true,
    "The node already has an active attachment to another session that is live (details: attachmentId, sessionId, live); a stale one (the node's presence offline, or no other live connection) is superseded by the attach instead.",
  ),
  'runtimenode.attach_revoked': spec(
    'CONFLICT',
    false,
    "The node's attachment to this session was revoked; this is terminal.",
  ),
  'runtimenode.capabilityupdate_conflict': spec(
    'CONFLICT',
    false,
    'The requested state change is not allowed (online requires declared capabilities).',
  ),
  'runtimenode.not_attached': spec('CONFLICT', false, 'The node has no active attachment.'),
  'version.floor_exceeded': spec(
    'CONFLICT',
    false,
    "The node's version is below the session's floor: it is read-only and may not write.",
  ),
  'version.ceiling_exceeded': spec(
    'CONFLICT',
    false,
    "The client's contract MAJOR version is above every MAJOR this server serves.",
  ),
  'version.unsupported': spec(
    'CONFLICT',
    false,
    "The client's contract MAJOR version is below every MAJOR this server serves; details name the supported range (supportedContractMajors).",
  ),
  'version.floor_malformed': spec(
    'INTERNAL_SERVER_ERROR',
    false,
    "The session's stored minimum node version is not a valid MAJOR.MINOR; nothing is admitted against it.",
  ),
  'policy.not_owner': spec(
    'FORBIDDEN',
    false,
    "Only the node's owner or an admin may do this (set a capability's access policy, break another's lease, or invoke a capability whose policy is `owner`).",
  ),
  'policy.not_member': spec(
    'FORBIDDEN',
    false,
    "Only the node's owner, an admin, or an active owner, collaborator or runtime contributor of a session the node is attached to may do this.",
  ),
  'lease.held': spec(
    'CONFLICT',
    true,
    "Another participant holds the capability's lease; details.expiresAt says when it ends at the latest (the holder is named only to the node's owner and admins).",
  ),
  'lease.not_leased': spec(
    'CONFLICT',
    false,
    "The capability's access policy is not `leased`: there is no lease to acquire.",
  ),
  'lease.not_found': spec('NOT_FOUND', false, 'No such lease visible to the caller.'),
  'lease.not_holder': spec(
    'FORBIDDEN',
    false,
    "Only the lease's holder may renew it; only the holder, the node's owner or an admin may release it.",
  ),
  'lease.ended': spec(
    'CONFLICT',
    false,
    'The lease has ended (released, broken or expired); acquire a new one.',
  ),
  'command.not_found': spec(
    'NOT_FOUND',
    false,
    'No such command visible to the caller (for a node: not addressed to it; the two are indistinguishable).',
  ),
  'command.permission_denied': spec(
    'FORBIDDEN',
    false,
    "The node's access policy does not let the caller invoke this capability (details.reason: not_owner, not_member, lease_required, lease_held_by_other), or approve/deny its commands.",
  ),
  'command.capability_unknown': spec(
    'CONFLICT',
    false,
    'The node does not declare this capability.',
  ),
  'command.node_unavailable': spec(
    'CONFLICT',
    false,
    "The node cannot take commands: it is revoked, or attached read-only (below its session's floor); details.reason says which.",
  ),
  'command.node_busy': spec(
    'CONFLICT',
    true,
    'The node already holds the most open commands it may (details.limit); retry when some finish.',
  ),
  'command.no_eligible_node': spec(
    'CONFLICT',
    true,
    'No node can take this capability now; details.reason: none_online (no online, writable node declares it), all_busy (each one holds its maximum of open commands), not_allowed (the access policy refuses the caller on every one).',
  ),
  'command.command_not_allowed': spec(
    'BAD_REQUEST',
    false,
    "The command is not in the capability's commands allow-list (or one is required, or the capability has none); details.allowed lists them.",
  ),
  'command.input_invalid': spec(
    'BAD_REQUEST',
    false,
    "The input does not match the capability's inputSchema; details.errors list the paths and messages.",
  ),
  'command.input_schema_invalid': spec(
    'CONFLICT',
    false,
    "The capability's declared inputSchema is not a usable JSON Schema; the node must declare a valid one.",
  ),
  'command.input_too_large': spec(
    'PAYLOAD_TOO_LARGE',
    false,
    'The command input exceeds the size limit (details.bytes, details.maxBytes).',
  ),
  'command.output_too_large': spec(
    'PAYLOAD_TOO_LARGE',
    false,
    'The command result (output or error) exceeds the size limit (details.bytes, details.maxBytes).',
  ),
  'command.idempotency_conflict': spec(
    'CONFLICT',
    false,
    'The idempotency key was already used by this caller for a different invocation; details.commandId names it.',
  ),
  'command.not_open': spec(
    'CONFLICT',
    false,
    'The command already ended (details.state), or is not in the state this call needs (approve/deny: awaiting_approval).',
  ),
  'command.result_conflict': spec(
    'CONFLICT',
    false,
    'The command already has a different result; a result is final.',
  ),
} as const satisfies Record<string, ErrorSpec>;

export type TetherErrorCode = keyof typeof ERROR_REGISTRY;

export const TETHER_ERROR_CODES = Object.keys(ERROR_REGISTRY) as TetherErrorCode[];

export function isTetherErrorCode(value: unknown): value is TetherErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_REGISTRY, value);
}

export function errorSpec(code: TetherErrorCode): ErrorSpec {
  return ERROR_REGISTRY[code];
}

/** The JSON shape carried in `error.data.tetherError` on the wire. */
export interface TetherErrorShape {
  code: TetherErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

/** `error.data` of every failed call on the tRPC wire: tRPC's code, HTTP status, path, Tether's error. */
export interface TetherErrorData {
  code: TrpcErrorCode;
  httpStatus: number;
  path: string | undefined;
  tetherError: TetherErrorShape;
}

/** The one error type services throw and clients receive. */
export class TetherError extends Error {
  override readonly name = 'TetherError';
  readonly code: TetherErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: TetherErrorCode,
    message?: string,
    details?: Record<string, unknown>,
    options?: ErrorOptions,
  ) {
    super(message ?? ERROR_REGISTRY[code].description, options);
    this.code = code;
    this.details = details;
  }

  get httpStatus(): number {
    return ERROR_REGISTRY[this.code].httpStatus;
  }

  get retryable(): boolean {
    return ERROR_REGISTRY[this.code].retryable;
  }

  toShape(): TetherErrorShape {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }

  /** Rebuilds an error received on the wire; a code this client does not know becomes `system.internal`. */
  static fromShape(shape: {
    code: string;
    message: string;
    details?: Record<string, unknown>;
  }): TetherError {
    if (isTetherErrorCode(shape.code))
      return new TetherError(shape.code, shape.message, shape.details);
    return new TetherError('system.internal', shape.message, {
      ...shape.details,
      unknownCode: shape.code,
    });
  }
}

export function isTetherError(value: unknown): value is TetherError {
  return value instanceof TetherError;
}
