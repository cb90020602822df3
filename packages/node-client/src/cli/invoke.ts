/** `tether-agent invoke`: a capability invoked as an operator, its result printed as JSON. */
import {
  CommandError,
  createTetherClient,
  createTetherWSClient,
  invokeAndWait,
} from '@tether/client';
import { CAPABILITY_NAME_PATTERN } from '@tether/contracts';
import WebSocket from 'ws';
import { toTetherError } from '../errors.js';
import {
  UsageError,
  cancellable,
  err,
  httpUrl,
  out,
  parse,
  positiveInt,
  required,
  uuid,
} from './common.js';

/** Parses `--input` as JSON (default `{}`). */
function jsonInput(value: string | undefined): unknown {
  if (value === undefined) return {};
  try {
    return JSON.parse(value) as unknown;
  } catch (error) {
    throw new UsageError(
      `--input must be JSON (${error instanceof Error ? error.message : String(error)})`,
    );
  }
}

export async function invokeCommand(args: string[]): Promise<number> {
  const { values } = parse(args, {
    server: { type: 'string' },
    token: { type: 'string' },
    node: { type: 'string' },
    capability: { type: 'string' },
    session: { type: 'string' },
    command: { type: 'string' },
    input: { type: 'string' },
    timeout: { type: 'string' },
    'idempotency-key': { type: 'string' },
  });
  const url = httpUrl(values.server, '--server');
  const token = required(values.token ?? process.env.TETHER_TOKEN, '--token (or TETHER_TOKEN)');
  const capability = required(values.capability, '--capability');
  if (!CAPABILITY_NAME_PATTERN.test(capability)) {
    throw new UsageError(`--capability ${JSON.stringify(capability)} is not a capability name`);
  }
  if (values.node !== undefined && values.session !== undefined) {
    throw new UsageError('--session picks among nodes found by capability; not with --node');
  }
  const sessionId = values.session === undefined ? undefined : uuid(values.session, '--session');
  const timeoutMs = positiveInt(values.timeout, '--timeout');
  const input = jsonInput(values.input);
  const target =
    values.node !== undefined
      ? { nodeId: required(values.node, '--node') }
      : sessionId !== undefined
        ? { sessionId }
        : {};
  // Fails fast (one HTTP call) when the server cannot be reached, rather than a socket retrying.
  await createTetherClient({ url })
    .system.info.query()
    .catch((error: unknown) => {
      throw toTetherError(error);
    });
  const ws = createTetherWSClient({
    url,
    token,
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    // One attempt: a CLI reports a refused connection rather than retrying forever.
    retryDelayMs: () => 1_000,
  });
  const client = createTetherClient({ url, transport: 'ws', wsClient: ws });
  return cancellable('invoke', async (signal) => {
    try {
      const command = await invokeAndWait(
        client,
        {
          target,
          capability,
          input,
          ...(values.command !== undefined ? { command: values.command } : {}),
          ...(timeoutMs !== undefined ? { timeoutMs } : {}),
          ...(values['idempotency-key'] !== undefined
            ? { idempotencyKey: values['idempotency-key'] }
            : {}),
        },
        {
          signal,
          onUpdate: (view) => {
            if (view.state === 'awaiting_approval') {
              err(`command ${view.commandId} awaits an owner's approval...`);
            }
          },
        },
      );
      if (command.state === 'succeeded') {
        out(JSON.stringify(command.output, null, 2));
        err(`command ${command.commandId} succeeded on node ${command.nodeId}`);
        return 0;
      }
      const failure = new CommandError(command);
      err(`tether-agent: ${failure.code}: ${failure.message}`);
      return 1;
    } catch (error) {
      throw toTetherError(error);
    } finally {
      await ws.close().catch(() => undefined);
    }
  });
}
