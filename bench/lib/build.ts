/**
 * Compiles lib/ and the bench's node process (bench/fixtures/node.ts) to plain JavaScript in
 * bench/.build with the project's own compiler (bench/tsconfig.build.json), so the measured nodes run
 * as a production deployment would: compiled JS, no tsx loader (which adds a second V8 isolate, about
 * 40 MB of RSS, to every process). Type errors do not stop the emit; a failed build falls back to tsx.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROOT = path.resolve(BENCH, '..');
export const BUILT_NODE = path.join(BENCH, '.build', 'bench', 'fixtures', 'node.js');
export const SOURCE_NODE = path.join(BENCH, 'fixtures', 'node.ts');

/** How node processes are started: the compiled fixture with plain node, or the source with tsx. */
export interface NodeScript {
  readonly script: string;
  readonly execArgv: readonly string[];
  readonly compiled: boolean;
}

export function tsxScript(): NodeScript {
  return { script: SOURCE_NODE, execArgv: ['--conditions=source', '--import', 'tsx'], compiled: false };
}

/** Builds (bounded to 120 s) and returns how to start nodes; tsx when BENCH_TSX=1 or the build fails. */
export function buildNodeScript(log: (m: string) => void): NodeScript {
  if (process.env['BENCH_TSX'] === '1') return tsxScript();
  const tsc = path.join(ROOT, 'node_modules', '.bin', 'tsc');
  try {
    execFileSync(tsc, ['-p', path.join(BENCH, 'tsconfig.build.json')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  } catch (e) {
    // tsc exits non-zero on type errors even though it emitted (noEmitOnError: false).
    const out = e instanceof Error && 'stdout' in e ? String((e as { stdout: unknown }).stdout).split('\n').slice(0, 3).join(' | ') : String(e);
    log(`tsc reported errors (${out.slice(0, 300)}); using what it emitted`);
  }
  if (!existsSync(BUILT_NODE)) {
    log('no compiled node script; running the nodes with tsx instead');
    return tsxScript();
  }
  return { script: BUILT_NODE, execArgv: [], compiled: true };
}
