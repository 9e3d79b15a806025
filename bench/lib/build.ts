/**
 * Compiles lib/ and the bench's node process (bench/fixtures/node.ts) to plain JavaScript in
 * bench/.build with the project's own compiler (bench/tsconfig.build.json), so the measured nodes run
 * as a production deployment would: compiled JS, no tsx loader (which adds a second V8 isolate, about
 * 40 MB of RSS, to every process). Type errors do not stop the emit; a failed build falls back to tsx.
 * {@link buildBaseline} compiles the same from a git commit, for A/B comparisons in one run.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
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

/**
 * Compiles `lib/` and the node process as they are at git `ref` (a commit, branch or tag) into
 * bench/.base/<commit>/, with this checkout's node_modules and compiler, and returns how to start
 * nodes from it. Throws when the ref is unknown or the build emits nothing.
 */
export function buildBaseline(ref: string, log: (m: string) => void): NodeScript & { readonly commit: string } {
  const commit = execFileSync('git', ['rev-parse', '--short', `${ref}^{commit}`], { cwd: ROOT, encoding: 'utf8' }).trim();
  const dir = path.join(BENCH, '.base', commit);
  const built = path.join(dir, 'bench', '.build', 'bench', 'fixtures', 'node.js');
  if (!existsSync(built)) {
    log(`compiling ${ref} (${commit}) into ${path.relative(ROOT, dir)}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const tar = execFileSync('git', ['archive', commit, 'lib', 'bench', 'tsconfig.json', 'package.json'], { cwd: ROOT, maxBuffer: 256 * 2 ** 20 });
    execFileSync('tar', ['-x', '-C', dir], { input: tar });
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    try {
      execFileSync(path.join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', path.join(dir, 'bench', 'tsconfig.build.json')],
        { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
    } catch {
      // Type errors do not stop the emit (noEmitOnError: false); a missing output is checked below.
    }
    if (!existsSync(built)) throw new Error(`building ${ref} (${commit}) emitted no node script`);
  }
  return { script: built, execArgv: [], compiled: true, commit };
}
