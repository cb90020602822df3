/**
 * tether-agent: enroll | pair | run | simulate. Exit codes: 0 ok, 1 failure, 2 usage error.
 * Expected failures print one clear line (no stack). Tokens and keys are never printed; an
 * enrollment key can come from TETHER_ENROLLMENT_KEY instead of the command line (`ps`).
 */
import { access, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import {
  CommandError,
  createTetherClient,
  createTetherWSClient,
  invokeAndWait,
} from '@tether/client';
import {
  CAPABILITY_NAME_PATTERN,
  DEVICE_ENROLL_BATCH_MAX,
  EventEnvelopeVersion,
  SessionId,
  TetherError,
  type Capabilities,
} from '@tether/contracts';
import WebSocket from 'ws';
import {
  CREDENTIALS_FILE_MODE,
  CredentialsError,
  loadCredentials,
  loadCredentialsList,
  saveCredentials,
  saveCredentialsList,
  type NodeCredentials,
} from './credentials.js';
import { builtinCapabilities, parseAllowList } from './builtins.js';
import { enrollWithKey, pair } from './enroll.js';
import { PairingError, toTetherError } from './errors.js';
import { createTetherNode } from './node.js';
import {
  startSimulation,
  type Outage,
  type SimEvent,
  type SimStatus,
  type LoopDelay,
  type Simulation,
} from './simulate.js';
import type { TetherLogger } from './util.js';

const DEFAULT_CREDENTIALS = './tether-node.json';

const USAGE = `Usage: tether-agent <command> [options]

Commands:
  enroll    --url URL --key KEY [--node-id ID] [--name N] [--type T] [--credentials PATH] [--force]
            Enroll this machine with an enrollment key; saves the credentials (mode 0600).
  pair      --url URL [--node-id ID] [--name N] [--type T] [--credentials PATH] [--poll-interval MS]
            [--force]
            Ask to join: prints a pairing code, waits for an operator's approval, saves the token.
            enroll and pair refuse to replace an existing credential file without --force.
  run       [--session SESSION_ID] [--capability NAME ...] [--credentials PATH] [--url URL]
            [--node-version MAJOR.MINOR] [--degraded] [--log-level debug|info|warn|error]
            [--allow-exec "CMD[,CMD...]" ...]
            Run this machine as a node (CPU, memory, uptime with every beat); Ctrl-C detaches.
            Answers the commands echo and system.metrics; --allow-exec adds shell.exec, which
            runs exactly the listed command lines (no shell, 10 s timeout, 64 KiB output).
  invoke    --server URL --capability NAME [--node ID | --session ID] [--token TOKEN]
            [--command C] [--input JSON] [--timeout MS] [--idempotency-key KEY]
            Invoke a capability as an operator on node ID, or on any online node declaring
            it (in session ID), wait for the result and print it as JSON. --token may come from
            TETHER_TOKEN. Exit 0 succeeded, 1 failed/expired/cancelled/denied or refused.
  simulate  --url URL --count N --session SESSION_ID --key KEY [--identities PATH] [--churn]
            [--churn-interval S] [--capability NAME ...] [--node-version V] [--ramp S]
            [--duration S] [--until-online] [--interval S] [--report PATH] [--batch N]
            N simulated nodes in this process, each with its own identity and socket.
            Enrolls in batches of --batch (default 500) with one reusable key (a single-use
            key is refused before anything is enrolled when N > 1). Runs until Ctrl-C,
            --duration, or (--until-online) every node is online.
            --identities reuses the identities saved there and saves new ones (mode 0600).
  help      Show this text.

--key may be omitted when TETHER_ENROLLMENT_KEY is set; --token when TETHER_TOKEN is.
Defaults: --credentials ${DEFAULT_CREDENTIALS}, --name <hostname>, --type daemon, --interval 5.
Exit codes: 0 ok, 1 failure, 2 usage error.`;

class UsageError extends Error {}
/** An expected refusal: one line, exit 1. */
class RefusedError extends Error {}

const out = (line: string): void => void process.stdout.write(`${line}\n`);
const err = (line: string): void => void process.stderr.write(`${line}\n`);

function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new UsageError(`${flag} is required`);
  return value;
}

function enrollmentKey(value: string | undefined): string {
  return required(value ?? process.env.TETHER_ENROLLMENT_KEY, '--key (or TETHER_ENROLLMENT_KEY)');
}

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer`);
  return n;
}

function positiveNumber(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number`);
  return n;
}

function httpUrl(value: string | undefined, flag: string): string {
  const url = required(value, flag);
  try {
    const parsed = new URL(url);
    if (parsed.protocol === 'http:' || parsed.protocol === 'https:') return url;
  } catch {
    // reported below
  }
  throw new UsageError(`${flag} must be an http:// or https:// URL`);
}

function capabilities(names: string[] | undefined): Capabilities {
  const caps: Capabilities = {};
  for (const name of names ?? []) {
    if (!CAPABILITY_NAME_PATTERN.test(name)) {
      throw new UsageError(
        `--capability ${JSON.stringify(name)}: names are lowercase, start with a letter, and use a-z 0-9 . _ -`,
      );
    }
    caps[name] = {};
  }
  return caps;
}

function uuid(value: string | undefined, flag: string): string {
  const id = SessionId.safeParse(required(value, flag));
  if (!id.success) throw new UsageError(`${flag} must be a session UUID`);
  return id.data;
}

function version(value: string | undefined, flag: string): string | undefined {
  if (value === undefined) return undefined;
  const parsed = EventEnvelopeVersion.safeParse(value);
  if (!parsed.success) throw new UsageError(`${flag} must be MAJOR.MINOR`);
  return parsed.data;
}

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

/** Resolves on the first SIGINT/SIGTERM (repeats, e.g. relayed by pnpm, are ignored). */
function onceSignalled(): { signalled: Promise<NodeJS.Signals>; dispose(): void } {
  let resolve!: (s: NodeJS.Signals) => void;
  const signalled = new Promise<NodeJS.Signals>((r) => (resolve = r));
  const handler = (signal: NodeJS.Signals): void => resolve(signal);
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signalled,
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

/**
 * Runs `body` with an abort signal that fires on the first SIGINT/SIGTERM; an error caused by
 * that abort becomes "<what> cancelled" and exit code 1.
 */
async function cancellable(
  what: string,
  body: (signal: AbortSignal, signalled: Promise<NodeJS.Signals>) => Promise<number>,
): Promise<number> {
  const controller = new AbortController();
  const signals = onceSignalled();
  const signalled = signals.signalled.then((signal) => {
    controller.abort(new Error(`cancelled by ${signal}`));
    return signal;
  });
  try {
    return await body(controller.signal, signalled);
  } catch (error) {
    if (!controller.signal.aborted) throw error;
    err(`${what} cancelled`);
    return 1;
  } finally {
    signals.dispose();
  }
}

function platform(): string {
  return `${process.platform}/${process.arch}`;
}

async function saved(path: string, credentials: NodeCredentials, verb: string): Promise<number> {
  await saveCredentials(path, credentials);
  out(`${verb}: node ${credentials.nodeId} (owner ${credentials.ownerParticipantId})`);
  out(`credentials saved to ${path} (mode ${CREDENTIALS_FILE_MODE.toString(8)})`);
  return 0;
}

/**
 * Refuses to replace an existing credential file unless `--force`: it may be the only copy of
 * a node's token (enroll or pair from earlier). Checked before anything is asked of the server,
 * so a refused run spends no key use and leaves no pairing request.
 */
async function assertMayWrite(path: string, force: boolean | undefined): Promise<void> {
  if (force) return;
  try {
    await access(path);
  } catch {
    return;
  }
  let holder = 'credentials';
  try {
    holder = `the credentials of node ${(await loadCredentials(path)).nodeId}`;
  } catch {
    // unreadable or not a credential file: still not ours to overwrite
  }
  throw new RefusedError(
    `${path} already holds ${holder}; pass --force to replace them (the old token is then lost), or --credentials PATH to write elsewhere`,
  );
}

async function enrollCommand(args: string[]): Promise<number> {
  const { values } = parse(args, {
    url: { type: 'string' },
    key: { type: 'string' },
    'node-id': { type: 'string' },
    name: { type: 'string' },
    type: { type: 'string' },
    credentials: { type: 'string' },
    force: { type: 'boolean' },
  });
  const url = httpUrl(values.url, '--url');
  const key = enrollmentKey(values.key);
  const path = values.credentials ?? DEFAULT_CREDENTIALS;
  await assertMayWrite(path, values.force);
  const credentials = await enrollWithKey({
    url,
    enrollmentKey: key,
    name: values.name ?? os.hostname(),
    nodeType: values.type ?? 'daemon',
    platform: platform(),
    ...(values['node-id'] !== undefined ? { nodeId: values['node-id'] } : {}),
  });
  return saved(path, credentials, 'enrolled');
}

async function pairCommand(args: string[]): Promise<number> {
  const { values } = parse(args, {
    url: { type: 'string' },
    'node-id': { type: 'string' },
    name: { type: 'string' },
    type: { type: 'string' },
    credentials: { type: 'string' },
    'poll-interval': { type: 'string' },
    force: { type: 'boolean' },
  });
  const url = httpUrl(values.url, '--url');
  const pollIntervalMs = positiveInt(values['poll-interval'], '--poll-interval');
  const path = values.credentials ?? DEFAULT_CREDENTIALS;
  await assertMayWrite(path, values.force);
  return cancellable('pairing', async (signal) => {
    const credentials = await pair({
      url,
      name: values.name ?? os.hostname(),
      nodeType: values.type ?? 'daemon',
      platform: platform(),
      signal,
      ...(values['node-id'] !== undefined ? { nodeId: values['node-id'] } : {}),
      ...(pollIntervalMs !== undefined ? { pollIntervalMs } : {}),
      onCode: (code, info) => {
        out(`pairing code: ${code}`);
        out(`ask an operator to approve it (expires ${info.expiresAt.toISOString()}); waiting...`);
      },
    });
    return saved(path, credentials, 'approved');
  });
}

async function runCommand(args: string[]): Promise<number> {
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

async function invokeCommand(args: string[]): Promise<number> {
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

function statusLine(s: SimStatus, loop?: LoopDelay): string {
  return (
    `t=${(s.elapsedMs / 1000).toFixed(1)}s nodes=${s.total} enrolled=${s.enrolled}/${s.total} ` +
    `connected=${s.connected} attached=${s.attached} online=${s.online} degraded=${s.degraded} ` +
    `reconnects=${s.reconnects} deferred=${s.deferrals} connect_errors=${s.connectErrors} ` +
    `terminated=${s.terminated}` +
    (loop ? ` ${loopText(loop)}` : '')
  );
}

/** This process's event-loop delay: how late its nodes may see and time their events. */
function loopText(loop: LoopDelay): string {
  return `loop_delay_ms p50=${loop.p50Ms} p99=${loop.p99Ms} max=${loop.maxMs}`;
}

function outageLine(o: Outage, startedAt: number): string {
  const t = (at: number | null): string =>
    at === null ? '-' : `${((at - startedAt) / 1000).toFixed(1)}s`;
  return (
    `outage: lost at t=${t(o.from)} (min online ${o.minOnline}), first back t=${t(o.firstBackAt)}, ` +
    `all back t=${t(o.to)}: reconnect first→last ${o.reconnectMs ?? '-'} ms, ` +
    `spread p50=${o.spread.p50 ?? '-'} p95=${o.spread.p95 ?? '-'} ms, outage ${o.durationMs ?? '-'} ms`
  );
}

/** `simulate --identities PATH`: the saved identities, or none when the file does not exist. */
async function loadIdentities(path: string): Promise<NodeCredentials[]> {
  try {
    await access(path);
  } catch {
    return [];
  }
  return loadCredentialsList(path);
}

async function simulateCommand(args: string[]): Promise<number> {
  const { values } = parse(args, {
    url: { type: 'string' },
    count: { type: 'string' },
    session: { type: 'string' },
    key: { type: 'string' },
    identities: { type: 'string' },
    churn: { type: 'boolean' },
    'churn-interval': { type: 'string' },
    capability: { type: 'string', multiple: true },
    'node-version': { type: 'string' },
    ramp: { type: 'string' },
    duration: { type: 'string' },
    interval: { type: 'string' },
    report: { type: 'string' },
    batch: { type: 'string' },
    'until-online': { type: 'boolean' },
  });
  const url = httpUrl(values.url, '--url');
  const count = positiveInt(required(values.count, '--count'), '--count')!;
  const sessionId = uuid(values.session, '--session');
  const durationS = positiveNumber(values.duration, '--duration');
  const intervalS = positiveNumber(values.interval, '--interval') ?? 5;
  const churnS = positiveNumber(values['churn-interval'], '--churn-interval');
  const rampS = positiveNumber(values.ramp, '--ramp');
  const nodeVersion = version(values['node-version'], '--node-version');
  const caps = capabilities(values.capability);
  const identities = values.identities ? await loadIdentities(values.identities) : [];
  const key = identities.length >= count ? undefined : enrollmentKey(values.key);
  const batch = positiveInt(values.batch, '--batch');
  if (batch !== undefined && batch > DEVICE_ENROLL_BATCH_MAX) {
    throw new UsageError(`--batch must be at most ${DEVICE_ENROLL_BATCH_MAX}`);
  }
  const events: SimEvent[] | undefined = values.report ? [] : undefined;
  let firstTermination: string | undefined;
  // Identity saves are chained: each writes the whole list, and never two at once.
  let saving = Promise.resolve();
  const saveIdentities = (path: string): Promise<void> =>
    (saving = saving.then(() => saveCredentialsList(path, identities)));

  let simulation: Simulation | undefined;
  let ticker: NodeJS.Timeout | undefined;
  const cpuAtStart = process.cpuUsage();
  return cancellable('simulation', async (signal, signalled) => {
    try {
      const reused = Math.min(identities.length, count);
      out(`simulate: ${count} nodes against ${url} (${reused} saved, ${count - reused} to enroll)`);
      const started = Date.now();
      let outagesShown = 0;
      const showOutages = (outages: Outage[], startedAt: number): void => {
        for (
          ;
          outagesShown < outages.length && outages[outagesShown]!.to !== null;
          outagesShown++
        ) {
          out(outageLine(outages[outagesShown]!, startedAt));
        }
      };
      const t = (): string => `t=${((Date.now() - started) / 1000).toFixed(1)}s`;
      let enrolledSoFar = reused;
      ticker = setInterval(() => {
        if (!simulation) {
          out(`${t()} enrolling: enrolled=${enrolledSoFar}/${count}`);
          return;
        }
        // The loop delay of this status line's interval.
        out(statusLine(simulation.status(), simulation.loopDelay({ reset: true })));
        showOutages(simulation.summary().outages, simulation.startedAt);
      }, intervalS * 1000);
      simulation = await startSimulation({
        url,
        sessionId,
        count,
        identities,
        ...(key !== undefined ? { enrollmentKey: key } : {}),
        ...(values.identities
          ? {
              // Saved as they come, so an interrupted enrollment is not repeated next time.
              onEnrolled: (credentials: NodeCredentials) => {
                identities.push(credentials);
                saveIdentities(values.identities!).catch((error: unknown) =>
                  err(`tether-agent: could not save identities: ${String(error)}`),
                );
              },
            }
          : {}),
        ...(batch !== undefined ? { enrollBatchSize: batch } : {}),
        onEnrollProgress: (enrolled) => {
          if (enrolled === enrolledSoFar) return;
          enrolledSoFar = enrolled;
          out(`${t()} enrolled=${enrolled}/${count}`);
        },
        onEnrollWait: ({ waitMs, code }) =>
          out(
            `${t()} enrolling: ${code === 'rate_limited' ? 'rate limited by the server' : code}, waiting ${(waitMs / 1000).toFixed(1)} s (enrolled=${enrolledSoFar}/${count})`,
          ),
        churn: churnS !== undefined ? { meanIntervalMs: churnS * 1000 } : (values.churn ?? false),
        signal,
        onEvent: (event) => {
          events?.push(event);
          if (event.type === 'terminated') firstTermination ??= event.cause;
        },
        ...(rampS !== undefined ? { rampMs: rampS * 1000 } : {}),
        ...(nodeVersion !== undefined ? { nodeVersion } : {}),
        ...(Object.keys(caps).length > 0 ? { capabilities: caps } : {}),
      });
      if (values.identities) await saveIdentities(values.identities);
      out(`simulate: run ${simulation.runId}: ${count} nodes started`);
      const ended: Promise<unknown>[] = [
        signalled.then((name) => out(`${name}: stopping the simulation...`)),
      ];
      if (durationS !== undefined) {
        ended.push(new Promise((resolve) => setTimeout(resolve, durationS * 1000).unref()));
      }
      if (values['until-online']) {
        ended.push(
          simulation
            .waitUntil((status) => status.online === count, 2_147_483_647)
            .then(() => out(`all ${count} nodes online: stopping the simulation...`)),
        );
      }
      await Promise.race(ended);
      clearInterval(ticker);
      out(statusLine(simulation.status(), simulation.loopDelay({ reset: true })));
      const summary = simulation.summary();
      const cpu = process.cpuUsage(cpuAtStart);
      const cpuPercent = ((cpu.user + cpu.system) / 1e3 / (Date.now() - started)) * 100;
      const rss = process.memoryUsage.rss();
      await simulation.stop();
      showOutages(summary.outages, simulation.startedAt);
      out(
        `summary: time_to_all_online=${summary.timeToAllOnlineMs ?? 'never'}ms ` +
          `reconnects=${summary.status.reconnects} deferred=${summary.status.deferrals} ` +
          `connect_errors=${summary.status.connectErrors} ` +
          `reconnect_downtime_ms p50=${summary.reconnectDowntime.p50 ?? '-'} ` +
          `p95=${summary.reconnectDowntime.p95 ?? '-'} max=${summary.reconnectDowntime.max ?? '-'}`,
      );
      out(
        `process: ${loopText(summary.loopDelay)} cpu=${cpuPercent.toFixed(1)}% of a core ` +
          `rss=${(rss / 2 ** 20).toFixed(0)}MB (${(rss / 1024 / count).toFixed(0)}KB/node)`,
      );
      if (values.report) {
        await writeFile(values.report, JSON.stringify({ summary, events }, null, 1));
        out(`report written to ${values.report}`);
      }
      if (summary.status.terminated === 0) return 0;
      err(
        `${summary.status.terminated} nodes stopped for good (first: ${firstTermination ?? '?'})`,
      );
      return 1;
    } finally {
      clearInterval(ticker);
      await simulation?.stop();
    }
  });
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'enroll':
        return await enrollCommand(rest);
      case 'pair':
        return await pairCommand(rest);
      case 'run':
        return await runCommand(rest);
      case 'simulate':
        return await simulateCommand(rest);
      case 'invoke':
        return await invokeCommand(rest);
      case 'help':
      case '--help':
      case '-h':
        out(USAGE);
        return 0;
      case undefined:
        err(USAGE);
        return 2;
      default:
        throw new UsageError(`unknown command: ${command}`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      err(`tether-agent: ${error.message}`);
      err(`run "tether-agent help" for usage`);
      return 2;
    }
    if (error instanceof TetherError) {
      err(`tether-agent: ${error.code}: ${error.message}`);
      if (error.code === 'enrollment.key_single_use') {
        err(
          'tether-agent: simulate --count > 1 needs a reusable key: enrollment.createKey({ reusable: true }), or POST /api/v1/enrollment-keys {"reusable":true}',
        );
      }
      return 1;
    }
    if (
      error instanceof PairingError ||
      error instanceof CredentialsError ||
      error instanceof RefusedError
    ) {
      err(`tether-agent: ${error.message}`);
      return 1;
    }
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
    err(`tether-agent: unexpected error: ${text}`);
    return 1;
  }
}

process.exit(await main(process.argv.slice(2)));
