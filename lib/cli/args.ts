/**
 * Arguments of the `pes` command: the usage text of each command, and parsing (node:util parseArgs,
 * strict) into typed records. Parsing only checks shapes (integers, repeated options, what needs what);
 * the library checks the rest (endpoint syntax, key format, id length) and the caller turns its
 * InvalidArgumentError into the same usage error (exit code 2).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { InvalidArgumentError } from '../errors.js';

/** The commands `pes` knows. */
export type CommandName = 'node' | 'status' | 'keygen' | 'help';

/** Usage text of one command: its synopsis line and the full help. */
export interface CommandUsage {
  readonly synopsis: string;
  readonly summary: string;
  readonly help: string;
}

/** Usage of every command; `synopsis` is what an argument error prints. */
export const USAGE: Readonly<Record<CommandName, CommandUsage>> = {
  node: {
    synopsis: 'usage: pes node [--id ID] [--endpoint ENDPOINT] [--join ENDPOINT]... [--heartbeat MS]\n'
      + '                [--curve-secret KEYFILE [--curve-public Z85] --allow Z85,Z85,... [--seed-key Z85]...] [--json]',
    summary: 'run a pes node until SIGTERM or SIGINT',
    help: `Starts a pes node on the ZeroMQ mesh and runs it until SIGTERM or SIGINT; then the node releases
the names its owners hold, closes every socket and the command exits 0.

options:
  --id ID               node id, unique in the cluster (default: <hostname>-<pid>)
  --endpoint ENDPOINT   where the node listens: tcp://host:port or ipc://path
                        (default tcp://127.0.0.1:0: a free port on loopback, printed at start).
                        Without CURVE keys, anyone who can reach this port can take part in the
                        protocol: bind a non-loopback address only on a network you trust, or with CURVE.
  --join ENDPOINT       join the cluster of the member listening at ENDPOINT; repeat to give several
                        (tried in turn, for up to 2 minutes). Without --join the node founds a cluster.
  --heartbeat MS        heartbeat this node starts with, in ms (default 8048, floor 1000); gossip
                        makes every member agree on one value
  --curve-secret FILE   turn CURVE security on; FILE holds this node's secret key (the output of
                        \`pes keygen\` works as is)
  --curve-public Z85    this node's public key (not needed when FILE holds it)
  --allow Z85,...       public keys allowed to connect: every member's (required with CURVE; this
                        node's own key and the --seed-key keys are added)
  --seed-key Z85        public key of the --join member: once for all of them, or once per --join,
                        in the same order (required with CURVE and --join)
  --json                print events as JSON lines instead of text
  -h, --help            show this help

output: one line once the node runs (its id, endpoint and members), then one line per change:
  nodeup ID | nodedown ID | members ID,ID,... | config KEY=VALUE; at the end, stopping / stopped.`,
  },
  status: {
    synopsis: 'usage: pes status --endpoint ENDPOINT [--timeout MS] [--json]\n'
      + '                  [--curve-secret KEYFILE [--curve-public Z85] --server-key Z85]',
    summary: 'show a running node\'s members, their liveness and its held names',
    help: `Asks the node listening at ENDPOINT for its view of the cluster and prints a table of the members
(id, endpoint, live as that node sees them), whether the node votes, and how many names its
owners hold. Exits 1 when no reply arrives within the timeout.

options:
  --endpoint ENDPOINT   the node to ask: tcp://host:port or ipc://path (required)
  --timeout MS          how long to wait for the reply, in ms (default 3000)
  --json                print the node's reply as JSON
  --curve-secret FILE   with CURVE on: a key file whose public key the node allows (--allow)
  --curve-public Z85    the public key of that pair (not needed when FILE holds it)
  --server-key Z85      with CURVE on: the node's public key (required)
  -h, --help            show this help`,
  },
  keygen: {
    synopsis: 'usage: pes keygen [--json]',
    summary: 'print a new CURVE key pair (Z85) for a node or an operator',
    help: `Prints a new CURVE key pair as two lines, "public: <Z85>" and "secret: <Z85>" (40 characters
each). Saved to a file, the output is a key file for --curve-secret; keep it private.

options:
  --json                print {"publicKey": ..., "secretKey": ...}
  -h, --help            show this help`,
  },
  help: {
    synopsis: 'usage: pes help [COMMAND]',
    summary: 'show help for a command',
    help: 'Shows the help of COMMAND (node, status, keygen), or the list of commands.',
  },
};

/** The overview `pes --help` prints. */
export const OVERVIEW = `usage: pes <command> [options]

commands:
${(Object.keys(USAGE) as CommandName[]).map((c) => `  ${c.padEnd(8)} ${USAGE[c].summary}`).join('\n')}

Run \`pes help <command>\` or \`pes <command> --help\` for its options.
exit codes: 0 ok, 1 failure, 2 usage error`;

/** Options of `pes node`, parsed. */
export interface NodeArgs {
  readonly command: 'node';
  readonly id: string | undefined;
  readonly endpoint: string | undefined;
  readonly join: readonly string[];
  readonly heartbeat: number | undefined;
  readonly curveSecretFile: string | undefined;
  readonly curvePublic: string | undefined;
  readonly allow: readonly string[];
  readonly seedKeys: readonly string[];
  readonly json: boolean;
}

/** Options of `pes status`, parsed. */
export interface StatusArgs {
  readonly command: 'status';
  readonly endpoint: string;
  readonly timeout: number;
  readonly json: boolean;
  readonly curveSecretFile: string | undefined;
  readonly curvePublic: string | undefined;
  readonly serverKey: string | undefined;
}

/** Options of `pes keygen`, parsed. */
export interface KeygenArgs {
  readonly command: 'keygen';
  readonly json: boolean;
}

/** `pes help [COMMAND]`, `pes --help` and `pes COMMAND --help`. */
export interface HelpArgs {
  readonly command: 'help';
  /** The command to explain; undefined for the overview. */
  readonly topic: CommandName | undefined;
}

/** Any parsed command line. */
export type CliArgs = NodeArgs | StatusArgs | KeygenArgs | HelpArgs;

/** Default of `pes status --timeout`, ms. */
export const DEFAULT_STATUS_TIMEOUT_MS = 3000;

const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const;

const NODE_OPTIONS = {
  ...HELP_OPTION,
  id: { type: 'string' },
  endpoint: { type: 'string' },
  join: { type: 'string', multiple: true },
  heartbeat: { type: 'string' },
  'curve-secret': { type: 'string' },
  'curve-public': { type: 'string' },
  allow: { type: 'string', multiple: true },
  'seed-key': { type: 'string', multiple: true },
  json: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

const STATUS_OPTIONS = {
  ...HELP_OPTION,
  endpoint: { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'boolean' },
  'curve-secret': { type: 'string' },
  'curve-public': { type: 'string' },
  'server-key': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

const KEYGEN_OPTIONS = { ...HELP_OPTION, json: { type: 'boolean' } } as const satisfies ParseArgsConfig['options'];

/** True for a command name `pes` knows. */
export function isCommandName(word: string | undefined): word is CommandName {
  return word !== undefined && Object.hasOwn(USAGE, word);
}

/**
 * Parses `argv` (without the node binary and script path).
 * @throws InvalidArgumentError naming the offending option (`argument` is `command` for an unknown or
 * missing command); the caller prints the synopsis of {@link commandOf} `argv` and exits 2.
 */
export function parseCli(argv: readonly string[]): CliArgs {
  const [first, ...rest] = argv;
  if (first === '--help' || first === '-h') return { command: 'help', topic: undefined };
  if (first === undefined) throw new InvalidArgumentError('command', 'a command is required');
  if (!isCommandName(first)) throw new InvalidArgumentError('command', `unknown command: ${first}`);
  switch (first) {
    case 'help': return parseHelp(rest);
    case 'node': return parseNode(rest);
    case 'status': return parseStatus(rest);
    case 'keygen': return parseKeygen(rest);
  }
}

/** The command `argv` names, when it names one (to pick the usage line an error prints). */
export function commandOf(argv: readonly string[]): CommandName | undefined {
  const first = argv[0];
  return isCommandName(first) ? first : undefined;
}

function parseHelp(argv: readonly string[]): HelpArgs {
  const { positionals } = parse(argv, HELP_OPTION, true);
  if (positionals.length > 1) throw new InvalidArgumentError('command', 'help takes at most one command');
  const topic = positionals[0];
  if (topic === undefined) return { command: 'help', topic: undefined };
  if (!isCommandName(topic)) throw new InvalidArgumentError('command', `unknown command: ${topic}`);
  return { command: 'help', topic };
}

function parseNode(argv: readonly string[]): NodeArgs | HelpArgs {
  const { values: v } = parse(argv, NODE_OPTIONS, false);
  if (v.help === true) return { command: 'help', topic: 'node' };
  const allow = (v.allow ?? []).flatMap(splitList);
  const join = v.join ?? [];
  const seedKeys = v['seed-key'] ?? [];
  const curve = v['curve-secret'] !== undefined;
  if (!curve && (v['curve-public'] !== undefined || allow.length > 0 || seedKeys.length > 0)) {
    throw new InvalidArgumentError('curve-secret', '--curve-public, --allow and --seed-key need --curve-secret');
  }
  if (curve && allow.length === 0) throw new InvalidArgumentError('allow', 'with CURVE on, --allow must list the cluster\'s public keys');
  if (curve && join.length > 0 && seedKeys.length === 0) {
    throw new InvalidArgumentError('seed-key', 'with CURVE on, --join needs --seed-key (the public key of the member joined)');
  }
  if (seedKeys.length > 0 && join.length === 0) throw new InvalidArgumentError('seed-key', '--seed-key needs --join');
  if (seedKeys.length > 1 && seedKeys.length !== join.length) {
    throw new InvalidArgumentError('seed-key', 'give --seed-key once for all --join endpoints, or once per --join');
  }
  return {
    command: 'node',
    id: nonEmpty('id', v.id),
    endpoint: nonEmpty('endpoint', v.endpoint),
    join: join.map((e) => nonEmpty('join', e) ?? ''),
    heartbeat: v.heartbeat === undefined ? undefined : positiveInt('heartbeat', v.heartbeat),
    curveSecretFile: nonEmpty('curve-secret', v['curve-secret']),
    curvePublic: nonEmpty('curve-public', v['curve-public']),
    allow,
    seedKeys,
    json: v.json === true,
  };
}

function parseStatus(argv: readonly string[]): StatusArgs | HelpArgs {
  const { values: v } = parse(argv, STATUS_OPTIONS, false);
  if (v.help === true) return { command: 'help', topic: 'status' };
  const endpoint = nonEmpty('endpoint', v.endpoint);
  if (endpoint === undefined) throw new InvalidArgumentError('endpoint', '--endpoint is required');
  const curve = v['curve-secret'] !== undefined;
  if (!curve && (v['curve-public'] !== undefined || v['server-key'] !== undefined)) {
    throw new InvalidArgumentError('curve-secret', '--curve-public and --server-key need --curve-secret');
  }
  if (curve && v['server-key'] === undefined) {
    throw new InvalidArgumentError('server-key', 'with CURVE on, --server-key must give the node\'s public key');
  }
  return {
    command: 'status',
    endpoint,
    timeout: v.timeout === undefined ? DEFAULT_STATUS_TIMEOUT_MS : positiveInt('timeout', v.timeout),
    json: v.json === true,
    curveSecretFile: nonEmpty('curve-secret', v['curve-secret']),
    curvePublic: nonEmpty('curve-public', v['curve-public']),
    serverKey: nonEmpty('server-key', v['server-key']),
  };
}

function parseKeygen(argv: readonly string[]): KeygenArgs | HelpArgs {
  const { values: v } = parse(argv, KEYGEN_OPTIONS, false);
  if (v.help === true) return { command: 'help', topic: 'keygen' };
  return { command: 'keygen', json: v.json === true };
}

/**
 * Options whose value is a Z85 key or a list of them. The Z85 alphabet has `-`, so a key may start with
 * one, which parseArgs would take for an option: the word after these options is always their value.
 */
const KEY_OPTIONS: ReadonlySet<string> = new Set(['--allow', '--seed-key', '--curve-public', '--server-key']);

/** Joins each key option with the word after it (`--allow -x...` -> `--allow=-x...`). */
function bindKeyValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i] ?? '';
    const next = argv[i + 1];
    if (word === '--') {
      out.push(...argv.slice(i));
      break;
    }
    if (KEY_OPTIONS.has(word) && next !== undefined) {
      out.push(`${word}=${next}`);
      i++;
    } else {
      out.push(word);
    }
  }
  return out;
}

/** parseArgs in strict mode, its errors (unknown option, missing value...) as InvalidArgumentError. */
function parse<O extends NonNullable<ParseArgsConfig['options']>>(argv: readonly string[], options: O, allowPositionals: boolean) {
  try {
    return parseArgs({ args: bindKeyValues(argv), options, strict: true, allowPositionals });
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_')) {
      throw new InvalidArgumentError(optionIn(String((e as Error).message)), (e as Error).message);
    }
    throw e;
  }
}

/** The option an error message of parseArgs is about (`'--foo'` in its text), or `arguments`. */
function optionIn(message: string): string {
  return /'(?:--?)([^'\s]+)/.exec(message)?.[1] ?? 'arguments';
}

/** Comma-separated list, blanks dropped. */
function splitList(text: string): string[] {
  return text.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

function nonEmpty(option: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value.trim() === '') throw new InvalidArgumentError(option, `--${option} must not be empty`);
  return value.trim();
}

function positiveInt(option: string, text: string): number {
  const n = /^\d+$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(option, `--${option} must be a positive integer (ms), not "${text}"`);
  return n;
}
