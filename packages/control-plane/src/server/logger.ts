/** pino JSON logs. Secrets are redacted by path, and request bodies are never logged. */
import { pino, type Logger } from 'pino';

export const REDACT_PATHS = [
  'token',
  '*.token',
  'nodeToken',
  '*.nodeToken',
  'enrollmentKey',
  '*.enrollmentKey',
  'claimSecret',
  '*.claimSecret',
  'bootstrapToken',
  '*.bootstrapToken',
  'metricsToken',
  '*.metricsToken',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'connectionParams',
  '*.connectionParams',
];

/** The censor: a set value becomes "[redacted]"; an unset one (undefined, null) is left alone. */
export function redactSet(value: unknown): unknown {
  return value === undefined || value === null ? value : '[redacted]';
}

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'tether' },
      // A secret that is not set stays as it is (absent or null): "[redacted]" would claim there
      // is one.
      redact: { paths: REDACT_PATHS, censor: redactSet },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? process.stdout,
  );
}
