// timeout: 300
/**
 * Every program in examples/ runs as its own process, as a user would run it, and must exit 0 by itself
 * within its time limit. Each child is killed by pid if it overstays.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = path.resolve(import.meta.dirname, '../..');
const examples = readdirSync(path.join(root, 'examples')).filter((f) => f.endsWith('.ts')).sort();

function runExample(file: string, limitMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', path.join('examples', file)], {
      cwd: root, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }, limitMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

test('examples: there is at least one example', () => {
  assert.ok(examples.length > 0);
});

for (const file of examples) {
  test(`examples: ${file} runs by itself -> exits 0`, async () => {
    const { code, output } = await runExample(file, 120_000);
    assert.is(code, 0, output);
  });
}

test.run();
