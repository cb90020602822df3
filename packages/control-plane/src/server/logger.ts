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

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'tether' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? process.stdout,
  );
}
