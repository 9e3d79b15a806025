/**
 * The `pes` command: `pes node`, `pes status`, `pes keygen`, `pes help`. The bin (`bin/pes.mjs`) calls
 * {@link main} and exits with the code it resolves with: 0 ok, 1 failure, 2 usage error.
 *
 * Each command's module is loaded when that command runs, so `pes --help` and argument errors never
 * load the native ZeroMQ module.
 */
import { InvalidArgumentError } from '../errors.js';
import { OVERVIEW, USAGE, commandOf, parseCli, type CliArgs } from './args.js';
import { processIo, type CliIo } from './io.js';
import { formatKeyFile } from './keys.js';

export { processIo, type CliIo, type StopSignal } from './io.js';

/** Exit codes of the `pes` command. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/**
 * Runs one `pes` command line and resolves with its exit code; never rejects. A usage error (unknown
 * command or option, a missing or malformed value, an option the library rejects) prints the message
 * and the command's usage line to stderr and resolves 2; any other failure prints one line and
 * resolves 1.
 * @param argv the arguments after `pes`, e.g. `['status', '--endpoint', 'tcp://127.0.0.1:7001']`.
 * @example
 * ```ts
 * process.exitCode = await main(process.argv.slice(2));
 * ```
 */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  let args: CliArgs;
  try {
    args = parseCli(argv);
  } catch (e) {
    return failed(e, argv, io);
  }
  try {
    return await run(args, io);
  } catch (e) {
    return failed(e, argv, io);
  }
}

async function run(args: CliArgs, io: CliIo): Promise<number> {
  switch (args.command) {
    case 'help':
      io.out(args.topic === undefined ? OVERVIEW : `${USAGE[args.topic].synopsis}\n\n${USAGE[args.topic].help}`);
      return EXIT.ok;
    case 'keygen': {
      const { generateCurveKeyPair } = await import('../transport/zmq.js');
      const pair = generateCurveKeyPair();
      io.out(args.json ? JSON.stringify(pair) : formatKeyFile(pair).trimEnd());
      return EXIT.ok;
    }
    case 'status': {
      const { runStatus } = await import('./status.js');
      return await runStatus(args, io);
    }
    case 'node': {
      const { runNode } = await import('./node-command.js');
      return await runNode(args, io);
    }
  }
}

/** Prints an error the way its kind asks for and returns the exit code. */
function failed(e: unknown, argv: readonly string[], io: CliIo): number {
  const command = commandOf(argv);
  const prefix = command === undefined ? 'pes' : `pes ${command}`;
  if (e instanceof InvalidArgumentError) {
    io.err(`${prefix}: ${e.message}`);
    io.err(command === undefined ? 'usage: pes <command> [options]  (pes --help lists the commands)' : USAGE[command].synopsis);
    return EXIT.usage;
  }
  const error = e instanceof Error ? e : new Error(String(e));
  io.err(`${prefix}: ${error.name === 'Error' ? '' : `${error.name}: `}${error.message}`);
  return EXIT.failure;
}
