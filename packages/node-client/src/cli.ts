/**
 * tether-agent: enroll | pair | run | invoke | simulate. Exit codes: 0 ok, 1 failure, 2 usage
 * error. Expected failures print one clear line (no stack). Tokens and keys are never printed; an
 * enrollment key can come from TETHER_ENROLLMENT_KEY instead of the command line (`ps`). The
 * commands are in `cli/`, one module each; this file is the usage text and the exit codes.
 */
import { TetherError } from '@tether/contracts';
import { CredentialsError } from './credentials.js';
import { PairingError } from './errors.js';
import { DEFAULT_CREDENTIALS, RefusedError, UsageError, err, out } from './cli/common.js';
import { enrollCommand, pairCommand } from './cli/enroll.js';
import { invokeCommand } from './cli/invoke.js';
import { runCommand } from './cli/run.js';
import { simulateCommand } from './cli/simulate.js';

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
  simulate  --url URL --count N [--session SESSION_ID] --key KEY [--identities PATH] [--churn]
            [--churn-interval S] [--capability NAME ...] [--node-version V] [--ramp S]
            [--duration S] [--until-online] [--interval S] [--report PATH] [--batch N]
            N simulated nodes in this process, each with its own identity and socket, attached
            to SESSION_ID (without --session they only beat: online by presence).
            Enrolls in batches of --batch (default 500) with one reusable key (a single-use
            key is refused before anything is enrolled when N > 1). Runs until Ctrl-C,
            --duration, or (--until-online) every node is online.
            --identities reuses the identities saved there and saves new ones (mode 0600).
  help      Show this text.

--key may be omitted when TETHER_ENROLLMENT_KEY is set; --token when TETHER_TOKEN is.
Defaults: --credentials ${DEFAULT_CREDENTIALS}, --name <hostname>, --type daemon, --interval 5.
Exit codes: 0 ok, 1 failure, 2 usage error.`;

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
