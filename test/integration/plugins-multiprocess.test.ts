// timeout: 240
/**
 * The plugin layer over the real mesh: 3 node processes on tcp loopback (fixtures/plugin-node.ts),
 * driven over stdin/stdout, each declaring the same singletons, cron job or watch.
 *
 * 1. Singletons s1..s4 for ~10 s with a kill -9 of an owner's process, then the survivors stopped:
 *    merged by timestamp, every singleton's start/stop history has no overlap (each start after the
 *    previous owner's stop, or after the kill of its process, which wrote nothing later) and its
 *    tokens rise.
 * 2. Drain under load: 6 working singletons; the node running the most is drained; all of them move,
 *    the reply reports each with its gap, the state counter is handed over, and no two processes' work
 *    lines of one singleton overlap in time.
 * 3. Cron '* * * * * *' on 3 processes, >= 30 distinct fires with a kill -9 of the owner in the middle:
 *    each fire at most once cluster-wide, tokens rise with scheduledAt, and the only missing ticks are
 *    in the failover window.
 * 4. Watch 'jobs/*' on every process; registrations, a singleton transfer and unregisters: every
 *    process sees the same sequence of (name, kind, token) (owner-down and lost excluded: they depend
 *    on the observer), each change within 2 heartbeats (plus a scheduling margin) on every node.
 *
 * Heartbeat 1000 ms. Histories are compared on one clock (performance.timeOrigin + performance.now(),
 * see cluster-harness.ts). Every wait is a bounded poll; every child is killed by pid in a finally.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type Cluster, type ErrorInfo, type Line, type NodeProcess, type OwnerRef, PLUGIN_NODE, now, withCluster as withClusterOf,
} from './fixtures/cluster-harness.js';
import { until } from './fixtures/wait.js';

const HB = 1000;
/** Scheduling slack on top of a protocol bound: two loaded cores, several processes. */
const MARGIN = 2000;

/** Runs `body` against a fresh cluster of `n` plugin-node processes within `ms` (see withCluster in the harness). */
function withCluster(n: number, ms: number, body: (c: Cluster) => Promise<void>): Promise<void> {
  // Work and renewal lines come every few ms: a failure dump shows the rest.
  return withClusterOf({ nodes: n, heartbeat: HB, fixture: PLUGIN_NODE, quiet: ['work', 'renew'] }, ms, async (c) => {
    console.log(`    cluster of ${n} up (${c.startup})`);
    await body(c);
  });
}

// ---- singleton histories ---------------------------------------------------------------------------

interface Run {
  readonly proc: NodeProcess;
  readonly token: number;
  readonly start: number;
  readonly state: number | null;
  /** The stop line's time, the kill time of a killed process, or undefined while it still runs. */
  end: number | undefined;
  reason: string | undefined;
  stopCount: number | undefined;
  readonly work: Line[];
}

/** Every run of singleton `name` on every process, from its start/stop/work lines, sorted by start. */
function runsOf(procs: readonly NodeProcess[], name: string): Run[] {
  const runs: Run[] = [];
  for (const p of procs) {
    let open: Run | undefined;
    for (const l of p.lines) {
      if (l['name'] !== name) continue;
      if (l.ev === 'start') {
        assert.is(open, undefined, `${p.id} ${name}: start while a run is open: ${JSON.stringify(l)}`);
        open = { proc: p, token: l['token'] as number, start: l.t, state: l['state'] as number | null, end: undefined, reason: undefined, stopCount: undefined, work: [] };
        runs.push(open);
      } else if (l.ev === 'stop') {
        assert.ok(open !== undefined, `${p.id} ${name}: stop without a start: ${JSON.stringify(l)}`);
        assert.is(l['token'], open.token, `${p.id} ${name}: stop token`);
        open.end = l.t;
        open.reason = l['reason'] as string;
        open.stopCount = l['count'] as number;
        open = undefined;
      } else if (l.ev === 'work') {
        assert.ok(open !== undefined, `${p.id} ${name}: work outside a run: ${JSON.stringify(l)}`);
        assert.is(l['token'], open.token, `${p.id} ${name}: work token`);
        open.work.push(l);
      }
    }
    if (open !== undefined && p.killedAt !== undefined) {
      open.end = p.killedAt;
      open.reason = 'kill -9';
    }
  }
  return runs.sort((a, b) => a.start - b.start);
}

/**
 * No overlap: each run starts after the previous one ended (its stop line, or the kill of its
 * process), work lines lie inside their run, tokens rise (a rerun after a failed transfer keeps its
 * token on the same node). At most the last run is still open.
 */
function assertNoOverlap(name: string, runs: readonly Run[]): void {
  assert.ok(runs.length > 0, `${name}: ran somewhere`);
  for (const [i, r] of runs.entries()) {
    for (const w of r.work) {
      assert.ok(w.t >= r.start && (r.end === undefined || w.t <= r.end), `${name}: work on ${r.proc.id} at ${w.t} outside its run ${r.start}..${r.end}`);
    }
    if (i === 0) continue;
    const prev = runs[i - 1] as Run;
    assert.ok(prev.end !== undefined, `${name}: run on ${prev.proc.id} (token ${prev.token}) still open when ${r.proc.id} started (token ${r.token}) at ${r.start.toFixed(1)}`);
    assert.ok(r.start > prev.end, `${name}: ${r.proc.id} started at ${r.start.toFixed(1)}, before ${prev.proc.id} ended (${prev.reason}) at ${prev.end.toFixed(1)}`);
    const lastPrevWork = prev.work.at(-1)?.t ?? -Infinity;
    const firstWork = r.work[0]?.t ?? Infinity;
    assert.ok(lastPrevWork < firstWork, `${name}: work overlaps`);
    if (prev.proc === r.proc && prev.token === r.token) continue;
    assert.ok(r.token > prev.token, `${name}: token ${r.token} on ${r.proc.id} after ${prev.token} on ${prev.proc.id}`);
  }
}

/**
 * The process whose latest start/stop line of `name` is a start (among `procs` still running), or
 * undefined when none or several are (lines of different processes arrive through different pipes: a
 * stop may still be in flight when the next owner's start arrived; the histories decide overlap).
 */
function ownerOf(procs: readonly NodeProcess[], name: string): NodeProcess | undefined {
  const owners = procs.filter((p) => p.killedAt === undefined && p.running && p.lines.filter((l) => l['name'] === name && (l.ev === 'start' || l.ev === 'stop')).at(-1)?.ev === 'start');
  return owners.length === 1 ? owners[0] : undefined;
}

function fmt(ms: number): string {
  return `${ms.toFixed(0)} ms`;
}

// ---- 1. singletons ---------------------------------------------------------------------------------

test('plugins multiprocess: singletons s1..s4 on 3 processes for ~10 s with a kill -9 of an owner -> per singleton no overlap, tokens rise', () =>
  withCluster(3, 90_000, async (c) => {
    const names = ['s1', 's2', 's3', 's4'];
    const t0 = now();
    await Promise.all(c.nodes.map(async (p) => {
      for (const name of names) await p.call('singleton', { name, work: 100 });
    }));
    await until(() => names.every((n) => ownerOf(c.nodes, n) !== undefined), 10_000, 'every singleton running');
    const firstOwners = names.map((n) => `${n}@${ownerOf(c.nodes, n)?.id}`);
    // A few heartbeats of renewals before the kill.
    await until(() => now() - t0 >= 4000, 10_000, '4 s of running');
    const counts = c.nodes.map((p) => names.filter((n) => ownerOf(c.nodes, n) === p).length);
    const victim = c.nodes[counts.indexOf(Math.max(...counts))] as NodeProcess;
    const orphaned = names.filter((n) => ownerOf(c.nodes, n) === victim);
    const killedAt = victim.kill9();
    const survivors = c.nodes.filter((p) => p !== victim);
    await until(() => names.every((n) => {
      const o = ownerOf(survivors, n);
      return o !== undefined && o.events('work', n).some((l) => l.t > killedAt);
    }), 3 * HB + MARGIN + 10_000, 'every singleton running on a survivor');
    const failovers = orphaned.map((n) => {
      const started = survivors.flatMap((p) => p.events('start', n)).filter((l) => l.t > killedAt).sort((a, b) => a.t - b.t)[0] as Line;
      return started.t - killedAt;
    });
    console.log(`    singletons: first owners ${firstOwners.join(' ')}; kill -9 ${victim.id} (ran ${orphaned.join(',')}); ` +
      `took over after ${failovers.map(fmt).join(', ')}`);
    assert.ok(Math.max(...failovers) < 3 * HB + MARGIN + HB, `failover within 3 heartbeats + contention + margin: ${failovers.map(fmt).join(', ')}`);

    await until(() => now() - t0 >= 10_000, 20_000, '10 s of running');
    // Both survivors stop (at once: with one of 3 members dead, the last one alone would have no
    // majority anyway); their runs end with a stop line.
    await Promise.all(survivors.map((p) => p.call('stop', {}, 15_000)));

    assert.ok(victim.lines.every((l) => l.t <= killedAt), `${victim.id} wrote nothing after its kill`);
    for (const name of names) {
      const runs = runsOf(c.nodes, name);
      assertNoOverlap(name, runs);
      for (const r of runs) assert.ok(r.end !== undefined, `${name}: every run ended`);
      console.log(`    ${name}: ${runs.map((r) => `${r.proc.id}#${r.token}(${r.reason}, ${r.work.length} work)`).join(' -> ')}`);
      const gaps = runs.slice(1).map((r, i) => r.start - (runs[i]?.end as number));
      assert.ok(gaps.every((g) => g > 0));
    }
  }));

// ---- 2. drain under load ---------------------------------------------------------------------------

interface DrainReply {
  readonly moved: readonly { readonly name: string; readonly to: string; readonly gapMs: number }[];
  readonly stopped: readonly string[];
  readonly failed: readonly { readonly name: string; readonly error: ErrorInfo }[];
}

test('plugins multiprocess: drain under load -> every singleton of the drained node moves, gaps reported, state handed over, work never overlaps', () =>
  withCluster(3, 60_000, async (c) => {
    const names = ['d1', 'd2', 'd3', 'd4', 'd5', 'd6'];
    // Each running singleton works every 100 ms and busy-loops 3 ms each time (load on its process).
    await Promise.all(c.nodes.map(async (p) => {
      for (const name of names) await p.call('singleton', { name, work: 100, spin: 3 });
    }));
    await until(() => names.every((n) => {
      const o = ownerOf(c.nodes, n);
      return o !== undefined && o.events('work', n).length >= 10;
    }), 20_000, 'every singleton running and working');
    const counts = c.nodes.map((p) => names.filter((n) => ownerOf(c.nodes, n) === p).length);
    const drained = c.nodes[counts.indexOf(Math.max(...counts))] as NodeProcess;
    const others = c.nodes.filter((p) => p !== drained);
    const ran = names.filter((n) => ownerOf(c.nodes, n) === drained);
    console.log(`    drain: owners ${names.map((n) => `${n}@${ownerOf(c.nodes, n)?.id}`).join(' ')}; draining ${drained.id} (${ran.join(',')})`);

    const drainAt = now();
    const report = await drained.call<DrainReply>('drain', { timeout: 20_000 }, 30_000);
    const drainMs = now() - drainAt;
    assert.equal(report.failed, [], `nothing failed: ${JSON.stringify(report.failed)}`);
    assert.equal(report.stopped, [], 'nothing stopped (two other nodes accept)');
    assert.equal(report.moved.map((m) => m.name).sort(), [...ran].sort(), 'every singleton it ran moved');
    for (const m of report.moved) {
      assert.ok(others.some((p) => p.id === m.to), `${m.name} moved to another node (${m.to})`);
      assert.ok(Number.isFinite(m.gapMs) && m.gapMs >= 0, `${m.name}: gap ${m.gapMs}`);
    }

    // Each moved singleton starts on its target and works there.
    await until(() => report.moved.every((m) => {
      const to = c.node(m.to);
      return ownerOf(c.nodes, m.name) === to && to.events('work', m.name).filter((l) => l.t > drainAt).length >= 5;
    }), 10_000, 'every moved singleton working on its target');
    // The drained node no longer contends: nothing starts there after the drain began.
    assert.equal(drained.events('start').filter((l) => l.t > drainAt), [], `${drained.id} starts nothing after the drain`);
    assert.is(names.filter((n) => ownerOf(c.nodes, n) === drained).length, 0);

    const rows: string[] = [];
    for (const m of report.moved) {
      const runs = runsOf(c.nodes, m.name);
      assertNoOverlap(m.name, runs);
      const oldRun = runs.filter((r) => r.proc === drained).at(-1) as Run;
      const newRun = runs.find((r) => r.proc.id === m.to && r.start > drainAt) as Run;
      assert.ok(oldRun !== undefined && newRun !== undefined);
      assert.is(oldRun.reason, 'handoff', `${m.name}: stopped for the handoff`);
      assert.is(runs.indexOf(newRun), runs.indexOf(oldRun) + 1, `${m.name}: the target is the next owner`);
      const lastOld = oldRun.work.at(-1) as Line;
      const firstNew = newRun.work[0] as Line;
      assert.ok(lastOld.t < firstNew.t, `${m.name}: last work on ${drained.id} (${lastOld.t}) < first on ${m.to} (${firstNew.t})`);
      assert.is(newRun.state, oldRun.stopCount, `${m.name}: the counter is handed over`);
      assert.is(newRun.state, lastOld['n'], `${m.name}: handed counter = the old owner's last work`);
      assert.is(firstNew['n'], (newRun.state ?? 0) + 1, `${m.name}: the new owner continues the counter`);
      assert.ok(newRun.token > oldRun.token);
      rows.push(`${m.name}->${m.to} reported ${fmt(m.gapMs)}, stop->start ${fmt(newRun.start - (oldRun.end as number))}, work gap ${fmt(firstNew.t - lastOld.t)}`);
    }
    // The singletons the drained node did not run were not disturbed, and none overlaps anywhere.
    for (const n of names) assertNoOverlap(n, runsOf(c.nodes, n));
    console.log(`    drain took ${fmt(drainMs)}: ${rows.join('; ')}`);
  }));

// ---- 3. cron ---------------------------------------------------------------------------------------

test("plugins multiprocess: cron '* * * * * *' on 3 processes, >= 30 fires, kill -9 of the owner in the middle -> each fire at most once, tokens rise, misses only in the failover", () =>
  withCluster(3, 100_000, async (c) => {
    await Promise.all(c.nodes.map((p) => p.call('cron', { name: 'tick', pattern: '* * * * * *' })));
    const fires = (): { p: NodeProcess; l: Line; at: number }[] => c.nodes.flatMap((p) => p.events('fire', 'tick').map((l) => ({ p, l, at: Date.parse(l['scheduledAt'] as string) })))
      .sort((a, b) => a.at - b.at);
    const distinct = (): number => new Set(fires().map((f) => f.at)).size;
    await until(() => distinct() >= 15, 40_000, '15 fires');
    const owner = (fires().at(-1) as { p: NodeProcess }).p;
    const killedAt = owner.kill9();
    const survivors = c.nodes.filter((p) => p !== owner);
    await until(() => distinct() >= 30 && survivors.some((p) => p.events('fire', 'tick').filter((l) => l.t > killedAt).length >= 10), 50_000,
      '30 fires, 10 of them after the kill');

    const all = fires();
    const seen = new Map<number, string[]>();
    for (const f of all) seen.set(f.at, [...(seen.get(f.at) ?? []), f.p.id]);
    const dup = [...seen].filter(([, who]) => who.length > 1);
    assert.equal(dup.map(([at, who]) => `${new Date(at).toISOString()} on ${who.join(',')}`), [], 'no fire ran twice');
    assert.ok(seen.size >= 30, `${seen.size} distinct fires`);
    for (let i = 1; i < all.length; i++) {
      const prev = all[i - 1] as { p: NodeProcess; l: Line };
      const cur = all[i] as { p: NodeProcess; l: Line };
      const [a, b] = [prev.l['token'] as number, cur.l['token'] as number];
      assert.ok(cur.p === prev.p ? b >= a : b > a, `tokens rise with scheduledAt: ${prev.p.id}#${a} then ${cur.p.id}#${b}`);
    }
    assert.ok(owner.lines.every((l) => l.t <= killedAt), `${owner.id} wrote nothing after its kill`);
    const before = all.filter((f) => f.p === owner);
    const after = all.filter((f) => f.p !== owner && f.l.t > killedAt);
    const lastBefore = Math.max(...before.map((f) => f.at));
    const firstAfter = Math.min(...after.map((f) => f.at));
    assert.ok(after.every((f) => f.at > lastBefore), 'every fire after the kill is later than the killed owner\'s last');
    // Exactly once per tick outside the failover window (catchUp 'skip' drops the fires nobody could run).
    const firstAt = (all[0] as { at: number }).at;
    const lastAt = (all.at(-1) as { at: number }).at;
    const missing: number[] = [];
    for (let at = firstAt; at <= lastAt; at += 1000) if (!seen.has(at)) missing.push(at);
    const outside = missing.filter((at) => !(at > lastBefore && at < firstAfter));
    const skips = c.nodes.flatMap((p) => p.events('skip', 'tick').map((l) => `${p.id}:${String(l['scheduledAt'])}:${String(l['reason'])}`));
    const owners = [...new Set(all.map((f) => `${f.p.id}#${String(f.l['token'])}`))];
    console.log(`    cron: ${seen.size} distinct fires over ${((lastAt - firstAt) / 1000 + 1).toFixed(0)} ticks by ${owners.join(' -> ')}; ` +
      `kill -9 ${owner.id}, first fire after it ${fmt(firstAfter - killedAt)} later; ${missing.length} ticks missed in the failover window` +
      `${skips.length > 0 ? `; skips ${skips.join(' ')}` : ''}`);
    assert.equal(outside.map((at) => new Date(at).toISOString()), [], 'no tick missed outside the failover window');
    // Fires never run early (the owner's wall clock had reached scheduledAt).
    for (const f of all) assert.ok(f.l.t >= f.at - 50, `fire ${new Date(f.at).toISOString()} written at ${new Date(f.l.t).toISOString()}`);
  }));

// ---- 4. watch --------------------------------------------------------------------------------------

interface Change { readonly name: string; readonly kind: string; readonly token: number; readonly t: number }

function changesOf(p: NodeProcess): Change[] {
  return p.events('change')
    .filter((l) => l['snapshot'] !== true && l['kind'] !== 'owner-down' && l['kind'] !== 'lost')
    .map((l) => ({ name: l['name'] as string, kind: l['kind'] as string, token: l['token'] as number, t: l.t }));
}

const key = (ch: Change): string => `${ch.name}:${ch.kind}:${ch.token}`;

test('plugins multiprocess: watch jobs/* on every process; registrations, a transfer, unregisters -> every process sees the same sequence of changes', () =>
  withCluster(3, 60_000, async (c) => {
    const [a, b, d] = c.nodes as [NodeProcess, NodeProcess, NodeProcess];
    await Promise.all(c.nodes.map((p) => p.call('watch', { target: 'jobs/*' })));
    let expected = 0;
    const spreads: number[] = [];
    /** After an action: waits until every process has seen `more` more changes; records the spread. */
    const seenEverywhere = async (more: number, what: string, from: number): Promise<void> => {
      expected += more;
      await until(() => c.nodes.every((p) => changesOf(p).length >= expected), 2 * HB + MARGIN, `every watch sees ${what}`);
      for (let i = expected - more; i < expected; i++) {
        const ts = c.nodes.map((p) => (changesOf(p)[i] as Change).t);
        spreads.push(Math.max(...ts) - from);
      }
    };

    let at = now();
    const ra = await a.call<{ token: number; owner: OwnerRef }>('register', { name: 'jobs/a' });
    await seenEverywhere(1, 'jobs/a registered', at);
    at = now();
    await b.call('register', { name: 'jobs/b' });
    await seenEverywhere(1, 'jobs/b registered', at);
    at = now();
    await a.call('register', { name: 'other/x' });
    at = now();
    await Promise.all(c.nodes.map((p) => p.call('singleton', { name: 'jobs/s' })));
    await seenEverywhere(1, 'jobs/s registered', at);
    await until(() => ownerOf(c.nodes, 'jobs/s') !== undefined, 5000, 'jobs/s started');
    const sOwner = ownerOf(c.nodes, 'jobs/s') as NodeProcess;
    const [target, caller] = c.nodes.filter((p) => p !== sOwner) as [NodeProcess, NodeProcess];
    at = now();
    const moved = await caller.call<{ name: string; to: string; gapMs: number }>('transfer', { name: 'jobs/s', to: target.id }, 15_000);
    assert.is(moved.to, target.id);
    await seenEverywhere(1, 'jobs/s handed off', at);
    await until(() => ownerOf(c.nodes, 'jobs/s') === target, 5000, `jobs/s running on ${target.id}`);
    at = now();
    await d.call('unregister', { name: 'jobs/a' });
    await seenEverywhere(1, 'jobs/a unregistered', at);
    at = now();
    await b.call('unregister', { name: 'jobs/b' });
    await seenEverywhere(1, 'jobs/b unregistered', at);
    at = now();
    const ra2 = await d.call<{ token: number; owner: OwnerRef }>('register', { name: 'jobs/a' });
    await seenEverywhere(1, 'jobs/a registered again', at);
    assert.ok(ra2.token > ra.token);

    // Settling: no further change on any process for 3.5 heartbeats (a late 'expired' would show here).
    const total = (): number => c.nodes.reduce((s, p) => s + p.events('change').length, 0);
    let last = total();
    let quietSince = now();
    await until(() => {
      const n = total();
      if (n !== last) {
        last = n;
        quietSince = now();
      }
      return now() - quietSince >= 3.5 * HB;
    }, 20_000, 'the watches to go quiet');

    const seqs = c.nodes.map((p) => changesOf(p).map(key));
    if (seqs.some((q) => JSON.stringify(q) !== JSON.stringify(seqs[0]))) {
      for (const p of c.nodes) {
        console.log(`    ${p.id} changes and runs:\n      ${p.lines.filter((l) => l.ev === 'change' || l.ev === 'start' || l.ev === 'stop' || l.ev === 'hook')
          .map((l) => JSON.stringify(l)).join('\n      ')}`);
      }
    }
    console.log(`    watch: ${seqs[0]?.join(' ')}; seen everywhere within ${fmt(Math.max(...spreads))} (max)`);
    for (const [i, p] of c.nodes.entries()) {
      assert.equal(seqs[i], seqs[0], `${p.id} sees the same sequence as ${a.id}`);
      assert.ok(p.events('change').every((l) => String(l['name']).startsWith('jobs/')), `${p.id}: only jobs/* changes`);
    }
    const kinds = (seqs[0] ?? []).map((k) => k.split(':').slice(0, 2).join(':'));
    assert.equal(kinds, [
      'jobs/a:registered', 'jobs/b:registered', 'jobs/s:registered', 'jobs/s:handoff', 'jobs/a:unregistered', 'jobs/b:unregistered', 'jobs/a:registered',
    ]);
    const ch = changesOf(a);
    for (const name of ['jobs/a', 'jobs/s']) {
      const toks = ch.filter((x) => x.name === name && x.kind !== 'unregistered').map((x) => x.token);
      assert.ok(toks.every((tk, i) => i === 0 || tk > (toks[i - 1] as number)), `${name}: tokens rise ${toks.join(',')}`);
    }
    assert.ok(Math.max(...spreads) < 2 * HB + MARGIN, `every change seen everywhere within 2 heartbeats + margin: ${Math.max(...spreads)}`);
    // The singleton's own onHandoff hook fired once on every node that declares it.
    for (const p of c.nodes) assert.is(p.events('hook', 'jobs/s').filter((l) => l['hook'] === 'onHandoff').length, 1, `${p.id}: onHandoff once`);
  }));

test.run();
