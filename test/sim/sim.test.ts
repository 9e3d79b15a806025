// timeout: 600
/**
 * The seeded fault simulation, 600 standard schedules and 200 of the 'races' mix (seeds 1..N) per CI run.
 * A failing schedule prints its seed; replay it step by step with `npm run sim -- --seed N --trace`
 * (add `--mix races` for the second). More seeds: `npm run sim -- --count 5000`.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { simulate } from './simulation.js';

const COUNT = Number(process.env['SIM_COUNT'] ?? 600);
const FROM = Number(process.env['SIM_FROM'] ?? 1);

/** Schedules of the 'races' mix per CI run (seeds 1..N): one name from two nodes, milliseconds apart. */
const RACES = Number(process.env['SIM_RACES'] ?? 200);

/** Runs `count` schedules of `mix` (seeds FROM..); returns the failures (seed and what went wrong). */
async function sweep(mix: 'standard' | 'races', count: number): Promise<{ failures: string[]; grants: number }> {
  const failures: string[] = [];
  let grants = 0;
  const started = performance.now();
  for (let seed = FROM; seed < FROM + count; seed++) {
    let r: Awaited<ReturnType<typeof simulate>>;
    try {
      r = await simulate({ seed, mix });
    } catch (e) {
      failures.push(`seed ${seed}: ${e instanceof Error ? e.name : String(e)}`);
      continue;
    }
    grants += r.grants;
    if (r.violations.length > 0 || r.divergent.length > 0) {
      failures.push(`seed ${seed}: ${JSON.stringify({ violations: r.violations, divergent: r.divergent })}`);
    }
  }
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`| mix | schedules | grants | failed | seconds |\n|---|---|---|---|---|\n| ${mix} | ${count} | ${grants} | ${failures.length} | ${secs} |`);
  return { failures, grants };
}

for (const [mix, count] of [['standard', COUNT], ['races', RACES]] as const) {
  test(`simulation (${mix}): ${count} seeded schedules of faults -> no safety violation and every node agrees after healing`, async () => {
    const { failures, grants } = await sweep(mix, count);
    assert.ok(grants > count, 'the schedules must actually grant names');
    const replay = `npm run sim -- --seed N --trace${mix === 'races' ? ' --mix races' : ''}`;
    assert.equal(failures, [], `replay with: ${replay}\n${failures.join('\n')}`);
  });
}

test.run();
