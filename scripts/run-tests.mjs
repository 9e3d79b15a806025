#!/usr/bin/env node
/**
 * Test runner: `node scripts/run-tests.mjs DIR|FILE [DIR|FILE...]`.
 *
 * Finds every `*.test.ts` under the given directories (a missing directory contributes nothing) and
 * runs each file in its own child process, `node --conditions=source --import tsx FILE`, at most
 * {@link JOBS} at a time. Every file is an uvu program (it calls `test.run()`), so it prints its own
 * summary; this runner adds what uvu cannot do from inside the process: a wall-clock limit per file
 * (default {@link DEFAULT_TIMEOUT_S} s, or a first-line comment `// timeout: 600`), killing the
 * child's whole process group when it is exceeded, and counting a file that crashes, hangs, exits
 * non-zero or never prints a summary as a failure.
 *
 * Output is grouped: each file's output is printed in one block when the file ends, so the output of
 * two files running side by side never interleaves. The very last line is always
 * `N passed, N failed` (with `, N skipped` when some were skipped); the exit code is non-zero when
 * any test failed or when no test ran at all.
 *
 * Plain Node ESM with no dependencies, so it runs before anything is built.
 */
import { spawn } from 'node:child_process';
import { openSync, readSync, closeSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Files run at once (CI machines have 2 cores). */
const JOBS = 2;
/** Wall-clock limit per file when its first line does not set one. */
const DEFAULT_TIMEOUT_S = 300;
/** After SIGTERM, how long a timed-out process group gets before SIGKILL. */
const KILL_GRACE_MS = 3000;
/** After the child exits, how long its pipes may stay open (held by leaked grandchildren). */
const PIPE_GRACE_MS = 1000;
/** Most output kept per file for printing: the head and the tail, the middle is elided. */
const KEEP_HEAD_BYTES = 256 * 1024;
const KEEP_TAIL_BYTES = 2 * 1024 * 1024;

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TIMEOUT_LINE = /^\s*\/\/\s*timeout:\s*(\d+(?:\.\d+)?)\s*s?\s*$/i;
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;

// ---- discovery -------------------------------------------------------------------------------------

/** Every `*.test.ts` under `dir`, sorted; nothing when `dir` does not exist. */
function findTests(arg) {
  const abs = path.resolve(arg);
  let st;
  try {
    st = statSync(abs);
  } catch {
    return [];
  }
  if (st.isFile()) return abs.endsWith('.test.ts') ? [abs] : [];
  const out = [];
  const walk = (dir) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && e.name.endsWith('.test.ts')) out.push(p);
    }
  };
  walk(abs);
  return out.sort();
}

/** The file's limit in ms: a first line `// timeout: N` (seconds) overrides the default. */
function timeoutOf(file) {
  let first = '';
  try {
    const fd = openSync(file, 'r');
    try {
      const buf = Buffer.alloc(256);
      const n = readSync(fd, buf, 0, buf.length, 0);
      first = buf.subarray(0, n).toString('utf8').split(/\r?\n/, 1)[0] ?? '';
    } finally {
      closeSync(fd);
    }
  } catch {
    // unreadable: the child will fail and report it
  }
  const m = TIMEOUT_LINE.exec(first);
  const s = m ? Number(m[1]) : DEFAULT_TIMEOUT_S;
  return Math.max(1, s) * 1000;
}

// ---- one file --------------------------------------------------------------------------------------

/** Kills a child and, on POSIX, its whole process group (it was spawned detached, so it leads one). */
function killTree(child, signal) {
  if (child.pid === undefined) return false;
  let hit = false;
  if (process.platform !== 'win32') {
    try {
      process.kill(-child.pid, signal);
      hit = true;
    } catch {
      // ESRCH: the group is gone
    }
  }
  // The leader itself, by pid, only while it has not been reaped (afterwards its pid may be reused).
  if (child.exitCode === null && child.signalCode === null) {
    try {
      process.kill(child.pid, signal);
      hit = true;
    } catch {
      // already dead
    }
  }
  return hit;
}

const running = new Set();

/**
 * Runs one test file; resolves with its counts, its output and why it failed (if it did).
 * uvu prints `Total:`, `Passed:` and `Skipped:` at the end of a run; `Total` excludes skipped tests,
 * so failed = Total - Passed. Each failing test also gets a `FAIL "name"` block, printed when its
 * suite ends; those are the only count left when the process dies before the summary.
 */
function runFile(file) {
  const rel = path.relative(process.cwd(), file) || file;
  const limitMs = timeoutOf(file);
  const started = process.hrtime.bigint();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', file], {
      cwd: ROOT,
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: process.platform !== 'win32',
    });
    running.add(child);

    const counts = { total: 0, passed: 0, skipped: 0, summaries: 0, failMarks: 0 };
    const head = [];
    let headBytes = 0;
    const tail = [];
    let tailBytes = 0;
    let elided = 0;
    const keep = (chunk) => {
      if (headBytes < KEEP_HEAD_BYTES) {
        head.push(chunk);
        headBytes += chunk.length;
        return;
      }
      tail.push(chunk);
      tailBytes += chunk.length;
      while (tailBytes > KEEP_TAIL_BYTES && tail.length > 1) {
        const dropped = tail.shift();
        tailBytes -= dropped.length;
        elided += dropped.length;
      }
    };
    // Parse stdout line by line as it arrives, independent of what is kept for printing.
    let partial = '';
    const parseLine = (line) => {
      const l = line.replace(ANSI, '');
      let m;
      if ((m = /^\s*Total:\s+(\d+)\s*$/.exec(l))) {
        counts.total += Number(m[1]);
        counts.summaries += 1;
      } else if ((m = /^\s*Passed:\s+(\d+)\s*$/.exec(l))) counts.passed += Number(m[1]);
      else if ((m = /^\s*Skipped:\s+(\d+)\s*$/.exec(l))) counts.skipped += Number(m[1]);
      else if (/^\s*FAIL\s+"/.test(l)) counts.failMarks += 1;
    };
    child.stdout.on('data', (chunk) => {
      keep(chunk);
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) parseLine(line);
    });
    child.stderr.on('data', keep);

    let timedOut = false;
    let killTimer;
    const limitTimer = setTimeout(() => {
      timedOut = true;
      killTree(child, 'SIGTERM');
      killTimer = setTimeout(() => killTree(child, 'SIGKILL'), KILL_GRACE_MS);
    }, limitMs);

    let exit = null;
    let leaked = false;
    let pipeTimer;
    let spawnError = null;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(limitTimer);
      clearTimeout(killTimer);
      clearTimeout(pipeTimer);
      running.delete(child);
      // A grandchild that left the process group can still hold the pipes; stop reading them so
      // the runner itself can exit.
      child.stdout.destroy();
      child.stderr.destroy();
      if (partial) parseLine(partial);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const reasons = [];
      if (spawnError) reasons.push(`could not start: ${spawnError.message}`);
      if (timedOut) reasons.push(`timed out after ${limitMs / 1000} s (killed)`);
      else if (exit && exit.signal) reasons.push(`killed by ${exit.signal}`);
      else if (exit && exit.code !== 0) reasons.push(`exited with code ${exit.code}`);
      if (counts.summaries === 0 && reasons.length === 0) reasons.push('exited without an uvu summary (no test.run()?)');
      // Without a summary (crash, hang), the FAIL blocks uvu printed for finished suites still count.
      let failed = counts.summaries > 0 ? Math.max(counts.total - counts.passed, 0) : counts.failMarks;
      if (reasons.length > 0) failed = Math.max(failed, 1);
      const output = Buffer.concat(
        elided > 0 ? [...head, Buffer.from(`\n... ${elided} bytes of output elided ...\n`), ...tail] : [...head, ...tail],
      ).toString('utf8');
      resolve({
        rel, ms, output, reasons, leaked,
        passed: counts.passed, failed, skipped: counts.skipped,
      });
    };

    child.on('error', (err) => {
      spawnError = err;
      finish();
    });
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      // The pipes close when every holder of them is gone; a grandchild the test leaked may keep
      // them open forever. Give it a moment, then kill what is left of the group.
      pipeTimer = setTimeout(() => {
        leaked = true;
        killTree(child, 'SIGKILL');
        finish();
      }, PIPE_GRACE_MS);
    });
    child.on('close', () => {
      // Whatever is left in the group (tsx's esbuild service on its way out, a server the test did
      // not stop) must not outlive the file: it could hold ports or CPU for the files after it.
      if (exit) killTree(child, 'SIGKILL');
      finish();
    });
  });
}

// ---- main ------------------------------------------------------------------------------------------

function fmtMs(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function summaryLine(t) {
  return `${t.passed} passed, ${t.failed} failed` + (t.skipped > 0 ? `, ${t.skipped} skipped` : '');
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length === 0) {
    process.stderr.write('usage: node scripts/run-tests.mjs DIR|FILE [DIR|FILE...]\n');
  }
  const files = [...new Set(args.flatMap(findTests))];
  const totals = { passed: 0, failed: 0, skipped: 0 };
  const results = [];

  const interrupt = (signal) => {
    for (const child of running) killTree(child, 'SIGKILL');
    process.stdout.write(`\ninterrupted by ${signal}\n`);
    totals.failed += Math.max(1, running.size);
    process.stdout.write(summaryLine(totals) + '\n');
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);

  process.stdout.write(`running ${files.length} test file(s), ${JOBS} at a time\n`);
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const file = files[next++];
      const r = await runFile(file);
      results.push(r);
      totals.passed += r.passed;
      totals.failed += r.failed;
      totals.skipped += r.skipped;
      const status = r.failed > 0 ? 'FAILED' : 'ok';
      let block = `\n──── ${r.rel} (${status}, ${fmtMs(r.ms)}) ────\n`;
      block += r.output.endsWith('\n') || r.output === '' ? r.output : r.output + '\n';
      for (const reason of r.reasons) block += `!! ${r.rel}: ${reason}\n`;
      if (r.leaked) block += `!! ${r.rel}: its output stayed open after it exited (a leaked child process?); its process group was killed\n`;
      process.stdout.write(block);
    }
  };
  await Promise.all(Array.from({ length: Math.min(JOBS, files.length) }, worker));

  process.stdout.write('\n');
  for (const r of results.sort((a, b) => a.rel.localeCompare(b.rel))) {
    const mark = r.failed > 0 ? '✘' : '✔';
    const why = r.reasons.length > 0 ? `  (${r.reasons.join('; ')})` : '';
    process.stdout.write(
      `${mark} ${r.rel}  ${r.passed} passed, ${r.failed} failed` +
        (r.skipped > 0 ? `, ${r.skipped} skipped` : '') + `  ${fmtMs(r.ms)}${why}\n`,
    );
  }
  if (totals.passed + totals.failed === 0) {
    process.stdout.write(`no tests ran (looked in: ${args.join(' ') || 'nothing'})\n`);
  }
  process.stdout.write(summaryLine(totals) + '\n');
  process.exitCode = totals.failed > 0 || totals.passed === 0 ? 1 : 0;
}

main().catch((err) => {
  process.stderr.write(`run-tests: ${err && err.stack ? err.stack : err}\n`);
  process.stdout.write('0 passed, 1 failed\n');
  process.exitCode = 1;
});
