/** `tether-agent run`: this machine as a node until SIGINT/SIGTERM (then it detaches). */
import { parseAllowList, builtinCapabilities } from '../builtins.js';
import { loadCredentials } from '../credentials.js';
import { createTetherNode } from '../node.js';
import type { TetherLogger } from '../util.js';
import {
  DEFAULT_CREDENTIALS,
  UsageError,
  capabilities,
  err,
  httpUrl,
  onceSignalled,
  out,
  parse,
  uuid,
  version,
} from './common.js';

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
type Level = (typeof LEVELS)[number];

function isLevel(value: string): value is Level {
  return (LEVELS as readonly string[]).includes(value);
}

/** Human-readable log lines on stderr (the SDK never hands a token to its logger). */
function stderrLogger(min: Level): TetherLogger {
  const line =
    (level: Level) =>
    (obj: Record<string, unknown>, msg?: string): void => {
      if (LEVELS.indexOf(level) < LEVELS.indexOf(min)) return;
      const fields = Object.entries(obj)
        .filter(([k, v]) => v !== undefined && k !== 'err')
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      const errText = obj.err instanceof Error ? ` (${obj.err.message})` : '';
      err(
        `${new Date().toISOString()} ${level.padEnd(5)} ${msg ?? ''}${errText} ${fields}`.trimEnd(),
      );
    };
  return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
}

export async function runCommand(args: string[]): Promise<number> {
  const { values } = parse(args, {
    session: { type: 'string' },
    capability: { type: 'string', multiple: true },
    credentials: { type: 'string' },
    url: { type: 'string' },
    'node-version': { type: 'string' },
    degraded: { type: 'boolean' },
    'log-level': { type: 'string' },
    'allow-exec': { type: 'string', multiple: true },
  });
  const level = values['log-level'] ?? 'info';
  if (!isLevel(level)) throw new UsageError('--log-level must be debug, info, warn or error');
  const sessionId = values.session === undefined ? undefined : uuid(values.session, '--session');
  const nodeVersion = version(values['node-version'], '--node-version');
  const caps = capabilities(values.capability);
  const allowExec = parseAllowList(values['allow-exec'] ?? []);
  if (values['allow-exec'] !== undefined && allowExec.length === 0) {
    throw new UsageError(
      '--allow-exec needs at least one command line, e.g. --allow-exec "uptime,df -h"',
    );
  }
  const credentials = await loadCredentials(values.credentials ?? DEFAULT_CREDENTIALS);
  const url = values.url === undefined ? credentials.url : httpUrl(values.url, '--url');
  const node = createTetherNode({
    ...credentials,
    url,
    capabilities: caps,
    health: values.degraded ? 'degraded' : 'online',
    autoMetrics: true,
    logger: stderrLogger(level),
    ...(sessionId !== undefined ? { sessionId } : {}),
    ...(nodeVersion !== undefined ? { nodeVersion } : {}),
  });
  for (const builtin of builtinCapabilities({ allowExec })) {
    node.onCommand(builtin.name, builtin.handler, {
      ...builtin.options,
      descriptor: builtin.descriptor,
    });
  }
  if (allowExec.length > 0) {
    out(`shell.exec allows: ${allowExec.map((c) => JSON.stringify(c)).join(', ')}`);
  }
  node.on('state', (state) => out(`${new Date().toISOString()} ${credentials.nodeId}: ${state}`));
  node.on('command_finished', (e) =>
    out(
      `${new Date(e.at).toISOString()} command ${e.commandId} ${e.capability}: ${e.outcome.ok ? 'succeeded' : `failed (${e.outcome.error.code})`}`,
    ),
  );
  node.on('read_only', () =>
    out(`${new Date().toISOString()} read-only: the session's floor is above this node's version`),
  );
  node.on('superseded', (e) =>
    out(
      `${new Date(e.at).toISOString()} superseded this node's stale attachment ${e.attachmentId} (session ${e.sessionId})`,
    ),
  );
  node.on('attach_conflict', (e) =>
    err(
      `${new Date(e.at).toISOString()} attach refused: ${e.live ? 'another copy of this node is connected and' : 'this node is still'} attached to session ${e.sessionId ?? '?'} (attachment ${e.attachmentId ?? '?'})${e.live ? '; stop it, or detach it (node.detach), and this one attaches' : ''}`,
    ),
  );
  node.on('reconnect_scheduled', (e) =>
    out(
      `${new Date(e.at).toISOString()} reconnecting in ${e.delayMs} ms (attempt ${e.attempt + 1})`,
    ),
  );
  const signals = onceSignalled();
  const terminated = new Promise<number>((resolve) =>
    node.once('terminated', (reason) => {
      err(`tether-agent: stopped for good: ${reason.message}`);
      resolve(1);
    }),
  );
  try {
    await node.start();
    return await Promise.race([
      terminated,
      signals.signalled.then(async (signal) => {
        out(`${signal}: detaching...`);
        await node.stop({ reason: `tether-agent received ${signal}` });
        out('stopped');
        return 0;
      }),
    ]);
  } finally {
    signals.dispose();
    await node.stop();
  }
}
