/**
 * `command.*` (participant principal) and the node side of commands (`runtimenode.commands`,
 * `runtimenode.pendingCommands`, `runtimenode.commandack`, `runtimenode.commandresult`).
 *
 * A command is stored before it is sent, delivered at least once to the node it addresses
 * (the node deduplicates by `commandId`), and ends in exactly one terminal state.
 */
import { z } from 'zod';
import { CapabilityName } from '../capabilities.js';
import { CommandId, NodeId, ParticipantId, SessionId, Timestamp } from '../ids.js';
import { CommandState } from '../states.js';
import { FleetEventId } from './fleet.js';
import { PageInput, page } from './common.js';

/** States the node is expected to act on (what `runtimenode.commands` replays on subscribe). */
export const DELIVERABLE_COMMAND_STATES = [
  'pending',
  'delivered',
  'running',
] as const satisfies readonly CommandState[];

/** States a command never leaves. */
export const TERMINAL_COMMAND_STATES = [
  'succeeded',
  'failed',
  'expired',
  'cancelled',
  'denied',
] as const satisfies readonly CommandState[];

export function isTerminalCommandState(state: CommandState): boolean {
  return (TERMINAL_COMMAND_STATES as readonly CommandState[]).includes(state);
}

/** Deadline of a command when `timeoutMs` is omitted (it covers approval, delivery and run). */
export const COMMAND_TIMEOUT_DEFAULT_MS = 60_000;
export const COMMAND_TIMEOUT_MIN_MS = 1_000;
/** The longest a command may stay open: one day. */
export const COMMAND_TIMEOUT_MAX_MS = 24 * 60 * 60 * 1000;
/** `input`, serialised as JSON, at most this many bytes (`command.input_too_large` beyond). */
export const COMMAND_INPUT_MAX_BYTES = 64 * 1024;
/** A result's `output` / `error`, serialised as JSON, at most this many bytes (`command.output_too_large`). */
export const COMMAND_OUTPUT_MAX_BYTES = 256 * 1024;
/** A node holds at most this many open commands; beyond, invocations get `command.node_busy`. */
export const COMMAND_OPEN_PER_NODE_MAX = 256;
export const IDEMPOTENCY_KEY_MAX_LENGTH = 200;
export const COMMAND_REASON_MAX_LENGTH = 512;

/** A sub-command name, as listed in a capability descriptor's `commands` allow-list. */
export const CommandName = z.string().min(1).max(128);
export const IdempotencyKey = z.string().min(1).max(IDEMPOTENCY_KEY_MAX_LENGTH);
const Reason = z.string().max(COMMAND_REASON_MAX_LENGTH);

/** Address one node by id. */
export const CommandTargetNode = z.strictObject({ nodeId: NodeId });
/**
 * Let the server pick an eligible online node that declares `capability` (not read-only, the
 * policy allows the caller), least recently commanded first; `sessionId` narrows to nodes
 * attached to that session. `capability` must equal the invocation's `capability`.
 */
export const CommandTargetCapability = z.strictObject({
  capability: CapabilityName,
  sessionId: SessionId.optional(),
});
export const CommandTarget = z.union([CommandTargetNode, CommandTargetCapability]);
export type CommandTarget = z.infer<typeof CommandTarget>;

export const CommandInvokeInput = z
  .strictObject({
    target: CommandTarget,
    capability: CapabilityName,
    /** Required when the descriptor lists `commands` (and must be one of them); else omitted. */
    command: CommandName.optional(),
    /** JSON, validated against the descriptor's `inputSchema`; omitted means `{}`. */
    input: z.json().optional(),
    timeoutMs: z.number().int().min(COMMAND_TIMEOUT_MIN_MS).max(COMMAND_TIMEOUT_MAX_MS).optional(),
    /** Same key from the same caller → the same command (a retry never creates a second one). */
    idempotencyKey: IdempotencyKey,
  })
  .refine((v) => !('capability' in v.target) || v.target.capability === v.capability, {
    message: 'target.capability must equal capability',
    path: ['target', 'capability'],
  });
export type CommandInvokeInput = z.infer<typeof CommandInvokeInput>;

export const CommandInvokeOutput = z.object({
  commandId: CommandId,
  state: CommandState,
  nodeId: NodeId,
  expiresAt: Timestamp,
  /** True when the idempotency key matched an earlier invocation (nothing new was created). */
  deduplicated: z.boolean(),
});
export type CommandInvokeOutput = z.infer<typeof CommandInvokeOutput>;

/** What a node reports when a command failed. */
export const CommandErrorInput = z.strictObject({
  code: z.string().min(1).max(128).optional(),
  message: z.string().max(4096),
  details: z.json().optional(),
});
export const CommandErrorView = z.object({
  code: z.string().nullable(),
  message: z.string(),
  details: z.json().optional(),
});
export type CommandErrorView = z.infer<typeof CommandErrorView>;

export const CommandView = z.object({
  commandId: CommandId,
  nodeId: NodeId,
  capability: CapabilityName,
  command: z.string().nullable(),
  input: z.json(),
  state: CommandState,
  callerParticipantId: ParticipantId,
  sessionId: SessionId.nullable(),
  idempotencyKey: z.string(),
  timeoutMs: z.number().int(),
  createdAt: Timestamp,
  expiresAt: Timestamp,
  deliveredAt: Timestamp.nullable(),
  startedAt: Timestamp.nullable(),
  finishedAt: Timestamp.nullable(),
  /** How many times it was sent to the node. */
  attempts: z.number().int().nonnegative(),
  /** Set when `succeeded` (what the node returned). */
  output: z.json().nullable(),
  /** Set when `failed` (the node's error); `denied`/`cancelled` carry the reason as message. */
  error: CommandErrorView.nullable(),
  /** Who approved, denied or cancelled it. */
  decidedBy: ParticipantId.nullable(),
});
export type CommandView = z.infer<typeof CommandView>;

export const CommandIdInput = z.strictObject({ commandId: CommandId });

export const CommandListInput = z
  .strictObject({
    nodeId: NodeId.optional(),
    sessionId: SessionId.optional(),
    state: CommandState.optional(),
    callerParticipantId: ParticipantId.optional(),
    ...PageInput,
  })
  .optional();
export type CommandListInput = z.infer<typeof CommandListInput>;
export const CommandListOutput = page(CommandView);

export const CommandCancelInput = z.strictObject({
  commandId: CommandId,
  reason: Reason.optional(),
});
export const CommandDenyInput = z.strictObject({ commandId: CommandId, reason: Reason.optional() });

export const CommandWatchInput = z.strictObject({
  commandId: CommandId,
  /**
   * Resume: the id of the last update received (each update is tracked by the command's
   * revision, a counter of its transitions). Each update is the whole command, so a resumed
   * watch gets the current state at once; every single transition is in `fleet.events`.
   */
  lastEventId: FleetEventId.nullish(),
});
/** `command.watch` yields the command as it is now, then after every state change; ends at a terminal state. */
export const CommandWatchEvent = CommandView;

// ---------------------------------------------------------------- node side

/** A command as a node receives it. */
export const CommandDelivery = z.object({
  commandId: CommandId,
  capability: CapabilityName,
  command: z.string().nullable(),
  input: z.json(),
  /** After this the server expires the command and ignores its result. */
  deadline: Timestamp,
  /** 1 on first delivery; higher on a redelivery (after a reconnect or restart). */
  attempt: z.number().int().positive(),
});
export type CommandDelivery = z.infer<typeof CommandDelivery>;

/** `runtimenode.commands` yields a command to run, or the cancellation of one it was sent. */
export const NodeCommandMessage = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('command'), command: CommandDelivery }),
  z.object({
    kind: z.literal('cancel'),
    commandId: CommandId,
    reason: z.enum(['cancelled', 'expired']),
  }),
]);
export type NodeCommandMessage = z.infer<typeof NodeCommandMessage>;

/** `nodeId` is optional (taken from the credential); when present it must match it. */
export const NodeCommandsInput = z
  .strictObject({
    nodeId: NodeId.optional(),
    /** Sent back by tRPC clients on reconnect; every open command is sent again regardless. */
    lastEventId: z.string().max(128).nullish(),
  })
  .optional();

export const PendingCommandsInput = z
  .strictObject({
    nodeId: NodeId.optional(),
    limit: z.number().int().min(1).max(COMMAND_OPEN_PER_NODE_MAX).optional(),
  })
  .optional();
export const PendingCommandsOutput = z.object({ commands: z.array(CommandDelivery) });

export const CommandAckInput = z.strictObject({ nodeId: NodeId.optional(), commandId: CommandId });
export const CommandAckOutput = z.object({
  commandId: CommandId,
  /** `running` normally; a terminal state (e.g. `cancelled`, `expired`) means do not run it. */
  state: CommandState,
});

/**
 * `ok: true` with an optional `output` (any JSON), or `ok: false` with an `error`. One object
 * (not a union) so the REST surface can take `commandId` from the path.
 */
export const CommandResultInput = z
  .strictObject({
    nodeId: NodeId.optional(),
    commandId: CommandId,
    ok: z.boolean(),
    output: z.json().optional(),
    error: CommandErrorInput.optional(),
  })
  .superRefine((v, ctx) => {
    if (v.ok && v.error !== undefined) {
      ctx.addIssue({
        code: 'custom',
        message: 'a successful result carries no error',
        path: ['error'],
      });
    }
    if (!v.ok && v.error === undefined) {
      ctx.addIssue({ code: 'custom', message: 'a failed result needs an error', path: ['error'] });
    }
    if (!v.ok && v.output !== undefined) {
      ctx.addIssue({
        code: 'custom',
        message: 'a failed result carries no output',
        path: ['output'],
      });
    }
  });
export type CommandResultInput = z.infer<typeof CommandResultInput>;

export const CommandResultOutput = z.object({
  commandId: CommandId,
  state: CommandState,
  /**
   * True when this result is the command's result (also for a repeat of the same result);
   * false when the command had already ended otherwise (cancelled, expired): nothing changed.
   */
  accepted: z.boolean(),
});

export type CommandIdInput = z.infer<typeof CommandIdInput>;
export type CommandCancelInput = z.infer<typeof CommandCancelInput>;
export type CommandDenyInput = z.infer<typeof CommandDenyInput>;
export type CommandWatchInput = z.infer<typeof CommandWatchInput>;
export type NodeCommandsInput = z.infer<typeof NodeCommandsInput>;
export type PendingCommandsInput = z.infer<typeof PendingCommandsInput>;
export type PendingCommandsOutput = z.infer<typeof PendingCommandsOutput>;
export type CommandAckInput = z.infer<typeof CommandAckInput>;
export type CommandAckOutput = z.infer<typeof CommandAckOutput>;
export type CommandResultOutput = z.infer<typeof CommandResultOutput>;
export type CommandListOutput = z.infer<typeof CommandListOutput>;
export type CommandErrorInput = z.infer<typeof CommandErrorInput>;
