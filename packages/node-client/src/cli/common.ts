/**
 * What the tether-agent commands share: the usage and refusal errors (`main` turns them into
 * exit codes 2 and 1), output lines, flag checks, and cancellation by SIGINT/SIGTERM.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import {
  CAPABILITY_NAME_PATTERN,
  EventEnvelopeVersion,
  SessionId,
  type Capabilities,
} from '@tether/contracts';

export const DEFAULT_CREDENTIALS = './tether-node.json';

export class UsageError extends Error {}
/** An expected refusal: one line, exit 1. */
export class RefusedError extends Error {}

export const out = (line: string): void => void process.stdout.write(`${line}\n`);
export const err = (line: string): void => void process.stderr.write(`${line}\n`);

type Options = NonNullable<ParseArgsConfig['options']>;
type Parsed<T extends Options> = ReturnType<
  typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: false }>
>;

/** `args` parsed strictly (no positionals); anything unknown or malformed is a usage error. */
export function parse<T extends Options>(args: string[], options: T): Parsed<T> {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

export function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new UsageError(`${flag} is required`);
  return value;
}

export function enrollmentKey(value: string | undefined): string {
  return required(value ?? process.env.TETHER_ENROLLMENT_KEY, '--key (or TETHER_ENROLLMENT_KEY)');
}

export function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer`);
  return n;
}

export function positiveNumber(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number`);
  return n;
}

export function httpUrl(value: string | undefined, flag: string): string {
  const url = required(value, flag);
  try {
    const parsed = new URL(url);
    if (parsed.protocol === 'http:' || parsed.protocol === 'https:') return url;
  } catch {
    // reported below
  }
  throw new UsageError(`${flag} must be an http:// or https:// URL`);
}

export function capabilities(names: string[] | undefined): Capabilities {
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

export function uuid(value: string | undefined, flag: string): string {
  const id = SessionId.safeParse(required(value, flag));
  if (!id.success) throw new UsageError(`${flag} must be a session UUID`);
  return id.data;
}

export function version(value: string | undefined, flag: string): string | undefined {
  if (value === undefined) return undefined;
  const parsed = EventEnvelopeVersion.safeParse(value);
  if (!parsed.success) throw new UsageError(`${flag} must be MAJOR.MINOR`);
  return parsed.data;
}

/** Resolves on the first SIGINT/SIGTERM (repeats, e.g. relayed by pnpm, are ignored). */
export function onceSignalled(): { signalled: Promise<NodeJS.Signals>; dispose(): void } {
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
export async function cancellable(
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
