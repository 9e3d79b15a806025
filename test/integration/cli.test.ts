// timeout: 900
/**
 * The `pes` command (bin/pes.mjs), run as child processes over real sockets on loopback.
 *
 * Every test body runs under `timed` (uvu has no per-test timeout); every wait is bounded; every child
 * is killed by pid in a `finally`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseCli } from '../../lib/cli/args.js';
import { InvalidArgumentError } from '../../lib/errors.js';
import type { StatusReply } from '../../lib/protocol/messages.js';
import { timed, until } from './fixtures/wait.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/pes.mjs', import.meta.url));
const Z85_KEY = /^[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}$/;
/**
 * Bound on the start-up of one `pes` process (node, tsx, the native module): about 1 s here, but CI
 * machines have 2 cores shared with other test files. A bound against hangs, not a performance claim.
 */
const STARTUP_MS = 15_000;

// --- helpers ------------------------------------------------------------------------------------------

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** performance.now() when the process exited. */
  readonly at: number;
}

/** A `pes` child process: its output so far, and its exit. */
interface Pes {
  readonly child: ChildProcess;
  readonly lines: string[];
  stderr: string;
  exit: Exit | undefined;
  readonly exited: Promise<Exit>;
}

const children = new Set<ChildProcess>();

/** Starts `pes ARGS...` as a child process. */
function pes(args: readonly string[]): Pes {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const p: Pes = {
    child, lines: [], stderr: '', exit: undefined,
    exited: new Promise<Exit>((resolve) => {
      child.on('exit', (code, signal) => {
        p.exit = { code, signal, at: performance.now() };
        resolve(p.exit);
      });
    }),
  };
  let partial = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    p.lines.push(...parts);
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    p.stderr += chunk;
  });
  return p;
}

/** Kills a child by pid unless it has exited (SIGKILL: nothing of it may outlive the test). */
function kill(child: ChildProcess): void {
  if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  children.delete(child);
}

/** Waits for a child to exit; kills it and throws when it has not within `ms`. */
async function exitWithin(p: Pes, ms: number, what: string): Promise<Exit> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not exit within ${ms} ms\nstdout: ${p.lines.join('\n')}\nstderr: ${p.stderr}`)), ms);
  });
  try {
    return await Promise.race([p.exited, late]);
  } finally {
    clearTimeout(timer);
    kill(p.child);
  }
}

/** Runs `pes ARGS...` to its end (bounded); returns its exit code, output and how long it took. */
async function run(args: readonly string[], ms: number): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = performance.now();
  const p = pes(args);
  const exit = await exitWithin(p, ms, `pes ${args.join(' ')}`);
  // Let the pipes drain: 'exit' can come before the last 'data'.
  await new Promise((resolve) => setImmediate(resolve));
  return { code: exit.code, stdout: p.lines.join('\n'), stderr: p.stderr, ms: exit.at - started };
}

interface NodeLine {
  readonly event: string;
  readonly id?: string;
  readonly endpoint?: string;
  readonly members?: readonly string[];
  readonly live?: readonly string[];
  readonly node?: string;
}

/** The JSON events a `pes node --json` child printed so far. */
function events(p: Pes): NodeLine[] {
  return p.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as NodeLine);
}

/** Starts `pes node --json ARGS...` and waits for its `started` event. */
async function startNode(args: readonly string[]): Promise<{ p: Pes; endpoint: string }> {
  const p = pes(['node', '--json', ...args]);
  await until(() => events(p).some((e) => e.event === 'started') || p.exit !== undefined, STARTUP_MS + 10_000, 'pes node to start');
  const started = events(p).find((e) => e.event === 'started');
  if (started?.endpoint === undefined) throw new Error(`pes node did not start: ${p.stderr}`);
  return { p, endpoint: started.endpoint };
}

/** A loopback port nobody listens on (it was free a moment ago). */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function status(endpoint: string, extra: readonly string[] = []): Promise<{ code: number | null; reply: StatusReply | undefined; stderr: string }> {
  const r = await run(['status', '--endpoint', endpoint, '--json', '--timeout', '2000', ...extra], STARTUP_MS + 4000);
  return { code: r.code, reply: r.code === 0 ? (JSON.parse(r.stdout) as StatusReply) : undefined, stderr: r.stderr };
}

test.after.each(() => {
  for (const child of [...children]) kill(child);
});

// --- tests --------------------------------------------------------------------------------------------

test('cli node: started as a child on port 0 -> prints its id and the resolved endpoint', timed(40_000, async () => {
  const { p, endpoint } = await startNode(['--id', 'cli-a', '--endpoint', 'tcp://127.0.0.1:0']);
  try {
    assert.match(endpoint, /^tcp:\/\/127\.0\.0\.1:\d+$/);
    assert.not.match(endpoint, /:0$/);
    const started = events(p).find((e) => e.event === 'started');
    assert.is(started?.id, 'cli-a');
    assert.equal(started?.members, ['cli-a']);
  } finally {
    kill(p.child);
  }
}));

test('cli node: text output -> one line with the id and the endpoint', timed(40_000, async () => {
  const p = pes(['node', '--id', 'cli-text', '--endpoint', 'tcp://127.0.0.1:0']);
  try {
    await until(() => p.lines.length > 0 || p.exit !== undefined, STARTUP_MS + 10_000, 'the first line');
    assert.match(p.lines[0] ?? '', /^pes node cli-text listening on tcp:\/\/127\.0\.0\.1:[1-9]\d* \(members: cli-text; live: cli-text; voting: yes\)$/);
  } finally {
    kill(p.child);
  }
}));

test('cli node: --join -> both nodes are members, the first prints the change; status -> both live', timed(120_000, async () => {
  const a = await startNode(['--id', 'cli-a', '--endpoint', 'tcp://127.0.0.1:0', '--heartbeat', '1000']);
  let b: { p: Pes } | undefined;
  try {
    b = await startNode(['--id', 'cli-b', '--endpoint', 'tcp://127.0.0.1:0', '--join', a.endpoint]);
    const bStarted = events(b.p).find((e) => e.event === 'started');
    assert.equal([...(bStarted?.members ?? [])].sort(), ['cli-a', 'cli-b']);
    await until(() => events(a.p).some((e) => e.event === 'members' && e.members?.includes('cli-b') === true), 5000, 'a to print the new member list');
    await until(() => events(a.p).some((e) => e.event === 'nodeup' && e.node === 'cli-b'), 5000, 'a to print nodeup cli-b');

    // The status query, over its own connection, sees what the asked node sees.
    let last: Awaited<ReturnType<typeof status>> | undefined;
    const deadline = performance.now() + 10_000;
    for (;;) {
      last = await status(a.endpoint);
      assert.is(last.code, 0, `pes status failed: ${last.stderr}`);
      if (last.reply !== undefined && last.reply.live.length === 2) break;
      if (performance.now() > deadline) break;
    }
    const reply = last.reply;
    assert.ok(reply !== undefined);
    assert.is(reply.type, 'statusR');
    assert.is(reply.node, 'cli-a');
    assert.equal(reply.members.members.map((m) => m.id).sort(), ['cli-a', 'cli-b']);
    assert.is(reply.members.members.find((m) => m.id === 'cli-a')?.endpoint, a.endpoint);
    assert.equal([...reply.live].sort(), ['cli-a', 'cli-b']);
    assert.is(reply.voting, true);
    assert.is(reply.held, 0);

    // The table form names both members as live.
    const table = await run(['status', '--endpoint', a.endpoint], STARTUP_MS + 4000);
    assert.is(table.code, 0, table.stderr);
    assert.match(table.stdout, /^node cli-a: voting yes, 0 names held, 2 members/);
    assert.match(table.stdout, /\ncli-a\s+tcp:\/\/127\.0\.0\.1:\d+\s+yes/);
    assert.match(table.stdout, /\ncli-b\s+tcp:\/\/127\.0\.0\.1:\d+\s+yes/);
  } finally {
    if (b !== undefined) kill(b.p.child);
    kill(a.p.child);
  }
}));

test('cli status: nobody at the endpoint -> exit 1 with a message, within its timeout', timed(30_000, async () => {
  const endpoint = `tcp://127.0.0.1:${await deadPort()}`;
  const r = await run(['status', '--endpoint', endpoint, '--timeout', '1000'], STARTUP_MS + 6000);
  assert.is(r.code, 1);
  assert.ok(r.stderr.length > 0);
  assert.is(r.stdout, '');
  // It waited its timeout, and did not hang past it (start-up time aside).
  assert.ok(r.ms >= 1000 && r.ms < 1000 + STARTUP_MS, `took ${Math.round(r.ms)} ms`);
}));

test('cli node: SIGTERM -> stops and exits 0 within 2 s', timed(80_000, async () => {
  const a = await startNode(['--id', 'cli-a', '--endpoint', 'tcp://127.0.0.1:0']);
  const b = await startNode(['--id', 'cli-b', '--endpoint', 'tcp://127.0.0.1:0', '--join', a.endpoint]);
  try {
    for (const n of [b, a]) {
      const sent = performance.now();
      n.p.child.kill('SIGTERM');
      const exit = await exitWithin(n.p, 5000, 'pes node after SIGTERM');
      assert.is(exit.code, 0, n.p.stderr);
      assert.ok(exit.at - sent < 2000, `exited ${Math.round(exit.at - sent)} ms after SIGTERM`);
      assert.equal(events(n.p).slice(-2).map((e) => e.event), ['stopping', 'stopped']);
    }
  } finally {
    kill(b.p.child);
    kill(a.p.child);
  }
}));

/**
 * Bad command lines: the argument parseCli rejects (null: parsed, then refused when the node starts),
 * and whose usage the process prints.
 */
const BAD_ARGS: readonly { readonly args: readonly string[]; readonly argument: string | null; readonly usage: string }[] = [
  { args: [], argument: 'command', usage: 'pes <command>' },
  { args: ['frobnicate'], argument: 'command', usage: 'pes <command>' },
  { args: ['node', '--bogus'], argument: 'bogus', usage: 'pes node ' },
  { args: ['node', '--heartbeat', 'soon'], argument: 'heartbeat', usage: 'pes node ' },
  { args: ['node', '--endpoint', 'http://127.0.0.1:1'], argument: null, usage: 'pes node ' },
  { args: ['node', '--seed-key', 'x'], argument: 'curve-secret', usage: 'pes node ' },
  { args: ['status'], argument: 'endpoint', usage: 'pes status ' },
  { args: ['status', '--endpoint'], argument: 'endpoint', usage: 'pes status ' },
  { args: ['status', '--endpoint', 'tcp://127.0.0.1:1', '--timeout', '-5'], argument: 'timeout', usage: 'pes status ' },
  { args: ['keygen', 'extra'], argument: 'arguments', usage: 'pes keygen' },
  { args: ['help', 'nothing'], argument: 'command', usage: 'pes help ' },
];

test('cli args: bad command lines -> InvalidArgumentError naming the argument', () => {
  for (const c of BAD_ARGS) {
    if (c.argument === null) continue;
    let err: unknown;
    try {
      parseCli(c.args);
    } catch (e) {
      err = e;
    }
    assert.instance(err, InvalidArgumentError, `pes ${c.args.join(' ')}`);
    assert.is((err as InvalidArgumentError).argument, c.argument, `pes ${c.args.join(' ')}`);
  }
});

test('cli: bad arguments -> exit 2, nothing on stdout, the usage of the command on stderr', timed(150_000, async () => {
  // A few at a time: each is a whole process start.
  for (let i = 0; i < BAD_ARGS.length; i += 4) {
    const batch = BAD_ARGS.slice(i, i + 4);
    const results = await Promise.all(batch.map((c) => run(c.args, STARTUP_MS * 3)));
    batch.forEach((c, j) => {
      const r = results[j];
      assert.ok(r !== undefined);
      assert.is(r.code, 2, `pes ${c.args.join(' ')} exited ${r.code}: ${r.stderr}`);
      assert.ok(r.stderr.includes(`usage: ${c.usage}`), `pes ${c.args.join(' ')}: ${r.stderr}`);
      assert.is(r.stdout, '');
    });
  }
}));

test('cli args: a key that starts with "-" (Z85 has it) -> taken as the option\'s value', () => {
  const key = `-${'a'.repeat(39)}`;
  const args = parseCli(['node', '--curve-secret', 'k', '--allow', key, '--curve-public', key, '--join', 'tcp://127.0.0.1:1', '--seed-key', key]);
  assert.is(args.command, 'node');
  if (args.command !== 'node') return;
  assert.equal(args.allow, [key]);
  assert.equal(args.seedKeys, [key]);
  assert.is(args.curvePublic, key);
  const st = parseCli(['status', '--endpoint', 'tcp://127.0.0.1:1', '--curve-secret', 'k', '--server-key', key]);
  assert.is(st.command === 'status' ? st.serverKey : undefined, key);
});

test('cli help: --help, help CMD, CMD --help -> usage on stdout, exit 0', timed(60_000, async () => {
  const overview = await run(['--help'], STARTUP_MS);
  assert.is(overview.code, 0);
  assert.match(overview.stdout, /^usage: pes <command>/);
  for (const c of ['node', 'status', 'keygen']) assert.match(overview.stdout, new RegExp(`\\n  ${c} `));
  const node = await run(['help', 'node'], STARTUP_MS);
  assert.is(node.code, 0);
  assert.match(node.stdout, /^usage: pes node [\s\S]*--join ENDPOINT/);
  const status = await run(['status', '--help'], STARTUP_MS);
  assert.is(status.code, 0);
  assert.match(status.stdout, /^usage: pes status [\s\S]*--timeout MS/);
}));

test('cli keygen: -> two distinct 40-character Z85 keys, public and secret', timed(40_000, async () => {
  const r = await run(['keygen'], STARTUP_MS);
  assert.is(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.is(lines.length, 2);
  const pub = /^public: (.+)$/.exec(lines[0] ?? '')?.[1];
  const sec = /^secret: (.+)$/.exec(lines[1] ?? '')?.[1];
  assert.ok(pub !== undefined && Z85_KEY.test(pub), `public key: ${lines[0]}`);
  assert.ok(sec !== undefined && Z85_KEY.test(sec), `secret key: ${lines[1]}`);
  assert.is.not(pub, sec);
  const json = await run(['keygen', '--json'], STARTUP_MS);
  const pair = JSON.parse(json.stdout) as { publicKey: string; secretKey: string };
  assert.ok(Z85_KEY.test(pair.publicKey) && Z85_KEY.test(pair.secretKey));
  assert.is.not(pair.publicKey, pub);
}));

test('cli CURVE: nodes with keys join; status with an allowed key -> reply, with an unknown key -> exit 1', timed(150_000, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pes-cli-'));
  const started: Pes[] = [];
  try {
    type Pair = { publicKey: string; secretKey: string };
    const names = ['a', 'b', 'op', 'rogue'] as const;
    const pairs = await Promise.all(names.map(async () => JSON.parse((await run(['keygen', '--json'], STARTUP_MS * 2)).stdout) as Pair));
    const key = (name: (typeof names)[number]): Pair => {
      const pair = pairs[names.indexOf(name)];
      if (pair === undefined) throw new Error(`no key ${name}`);
      return pair;
    };
    // a's key file is keygen's text output; b's holds only the secret, with the public key on the line.
    writeFileSync(join(dir, 'a.key'), `public: ${key('a').publicKey}\nsecret: ${key('a').secretKey}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'b.key'), `${key('b').secretKey}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'op.key'), `public: ${key('op').publicKey}\nsecret: ${key('op').secretKey}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'rogue.key'), `public: ${key('rogue').publicKey}\nsecret: ${key('rogue').secretKey}\n`, { mode: 0o600 });
    const allow = [key('a').publicKey, key('b').publicKey, key('op').publicKey].join(',');

    const a = await startNode(['--id', 'cli-a', '--curve-secret', join(dir, 'a.key'), '--allow', allow]);
    started.push(a.p);
    const b = await startNode([
      '--id', 'cli-b', '--curve-secret', join(dir, 'b.key'), '--curve-public', key('b').publicKey, '--allow', allow,
      '--join', a.endpoint, '--seed-key', key('a').publicKey,
    ]);
    started.push(b.p);
    assert.equal([...(events(b.p).find((e) => e.event === 'started')?.members ?? [])].sort(), ['cli-a', 'cli-b']);

    const ok = await status(a.endpoint, ['--curve-secret', join(dir, 'op.key'), '--server-key', key('a').publicKey]);
    assert.is(ok.code, 0, ok.stderr);
    assert.equal(ok.reply?.members.members.map((m) => m.id).sort(), ['cli-a', 'cli-b']);
    assert.equal(ok.reply?.members.members.find((m) => m.id === 'cli-a')?.publicKey, key('a').publicKey);

    const rogue = await status(a.endpoint, ['--curve-secret', join(dir, 'rogue.key'), '--server-key', key('a').publicKey]);
    assert.is(rogue.code, 1);
    const plain = await status(a.endpoint);
    assert.is(plain.code, 1);
  } finally {
    for (const p of started) kill(p.child);
    rmSync(dir, { recursive: true, force: true });
  }
}));

test.run();
