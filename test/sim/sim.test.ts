// timeout: 600
/**
 * The seeded fault simulation, 600 schedules (seeds 1..600) per CI run. A failing schedule prints its
 * seed; replay it step by step with `npm run sim -- --seed N --trace`. More seeds: `npm run sim -- --count 5000`.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { simulate } from './simulation.js';

const COUNT = Number(process.env['SIM_COUNT'] ?? 600);
const FROM = Number(process.env['SIM_FROM'] ?? 1);

test(`simulation: ${COUNT} seeded schedules of faults -> no safety violation and every node agrees after healing`, async () => {
  const failures: string[] = [];
  let grants = 0;
  const started = performance.now();
  for (let seed = FROM; seed < FROM + COUNT; seed++) {
    let r: Awaited<ReturnType<typeof simulate>>;
    try {
      r = await simulate({ seed });
    } catch (e) {
      failures.push(`seed ${seed}: ${e instanceof Error ? e.name : String(e)}`);
      continue;
    }
    grants += r.grants;
    if (r.violations.length > 0 || r.divergent.length > 0) {
      failures.push(`seed ${seed}: ${JSON.stringify({ violations: r.violations, divergent: r.divergent })}`);
    }
  }
  console.log(`| schedules | grants | failed | seconds |\n|---|---|---|---|\n| ${COUNT} | ${grants} | ${failures.length} | ${((performance.now() - started) / 1000).toFixed(1)} |`);
  assert.ok(grants > COUNT, 'the schedules must actually grant names');
  assert.equal(failures, [], `replay with: npm run sim -- --seed N --trace\n${failures.join('\n')}`);
});

test.run();
