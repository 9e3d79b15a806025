/**
 * A seeded, deterministic simulation of a pes cluster under faults. One seed fixes everything: the
 * operations (register, unregister, update, owner exits), the faults (partitions and heals, loss,
 * duplication, delay and so reordering, crashes and restarts that lose acceptor state), clock drift and
 * how far time moves between steps. Every grant and end an owner sees is recorded with the cluster's
 * global time and checked by `checkHistory`; at the end the network heals and every node's `whereis`
 * must agree with what owners believe they hold.
 */
import type { PesNode } from '../../lib/node.js';
import type { Owner } from '../../lib/owner.js';
import type { OwnerRef } from '../../lib/protocol/messages.js';
import { createTestCluster, Random, type TestCluster } from '../../lib/testing.js';
import { checkHistory, heldAtEnd, type HistoryEvent, type Violation } from './history.js';

export interface SimOptions {
  readonly seed: number;
  readonly nodes?: number;
  readonly steps?: number;
  /** Print every step (for replays). */
  readonly trace?: boolean;
  /**
   * 'races' also fills the otherwise idle steps with operations on one name a few milliseconds apart:
   * a registration, handoff, unregister or the holder's exit on one node, then a registration or
   * unregister on another, the exit of the owner the first action was about (mid-registration or
   * mid-handoff), or (5 nodes) the removal of the first node from the cluster. Rivals then prepare, probe and take over while the other side is mid-commit or
   * mid-handoff. 'members' (always 5 nodes) fills them with membership changes in quick succession
   * instead: two changes up to 400 ms apart, often while a node cut off from the others registers a
   * name (its guard asks the list it had) and then reaches only some of them again. 'joins' (3 nodes,
   * up to 2 more) fills them with new nodes that join through a member (`start({ seeds })`), which
   * then often crashes within 60 ms (before or after it has added the new node), and with the
   * membership changes of the standard mix. Default 'standard' (the schedules a seed has always meant).
   */
  readonly mix?: 'standard' | 'races' | 'members' | 'joins';
}

export interface SimResult {
  readonly seed: number;
  readonly violations: readonly Violation[];
  /** Names where nodes disagreed, or disagreed with their holder, after healing. */
  readonly divergent: readonly string[];
  readonly grants: number;
  readonly ends: number;
  readonly steps: number;
}

const HEARTBEAT = 1000;
const NAMES = ['alpha', 'beta', 'gamma', 'delta', 'omega'];

const key = (r: OwnerRef): string => `${r.node}/${r.inc}/${r.id}`;

export async function simulate(options: SimOptions): Promise<SimResult> {
  const rnd = new Random(options.seed);
  const n = options.nodes ?? (options.mix === 'members' ? 5 : options.mix === 'joins' ? 3 : rnd.next() < 0.7 ? 3 : 5);
  const rates = Array.from({ length: n }, () => 1 + (rnd.next() * 2 - 1) * 0.004);
  const cluster = await createTestCluster({
    nodes: n, seed: options.seed, rates, settings: { heartbeat: HEARTBEAT },
    node: { phaseTimeout: 100, timeout: 3000 },
  });
  const { clock, net } = cluster;
  // A schedule is a few names on a few nodes: this many timers at one instant is a loop that never lets
  // time pass (it would hang the run), reported as a failure of the seed.
  clock.maxTimersPerInstant = 200_000;
  const history: HistoryEvent[] = [];
  const faults: { from: number; to: number }[] = [];
  let openFault: { from: number; to: number } | undefined;
  const trace = (s: string): void => { if (options.trace === true) console.log(`${clock.now().toFixed(0).padStart(7)} ${s}`); };
  const owners = new Map<string, Owner[]>();
  const down = new Set<number>();

  const watch = (node: PesNode): void => {
    node.events.on('registered', (ev) => {
      trace(`grant ${ev.name} -> ${key(ev.owner)} #${ev.token}`);
      history.push({ type: 'grant', name: ev.name, owner: key(ev.owner), token: ev.token, at: clock.now() });
    });
    node.events.on('released', (ev) => {
      trace(`end ${ev.name} ${key(ev.owner)} #${ev.token} ${ev.reason}`);
      history.push({ type: 'end', name: ev.name, owner: key(ev.owner), token: ev.token, at: clock.now(), reason: ev.reason });
    });
  };
  cluster.nodes.forEach(watch);

  const faultStart = (): void => {
    if (openFault === undefined) {
      openFault = { from: clock.now(), to: Infinity };
      faults.push(openFault);
    }
  };
  const faultPoint = (): void => {
    faults.push({ from: clock.now(), to: clock.now() + 6 * HEARTBEAT });
  };
  const live = (): number[] => cluster.nodes.map((_, i) => i).filter((i) => !down.has(i));
  const nodeAt = (i: number): PesNode => cluster.nodes[i] as PesNode;
  const ownersOf = (i: number): Owner[] => (owners.get(cluster.ids[i] as string) ?? []).filter((o) => o.alive);
  const spawn = (i: number): Owner => {
    const o = nodeAt(i).spawn();
    const id = cluster.ids[i] as string;
    owners.set(id, [...(owners.get(id) ?? []).filter((x) => x.alive), o]);
    return o;
  };
  /** One membership change through node `i`: a removed node that still runs rejoins, or (above 3 members) one is removed. */
  const changeMembers = (i: number): void => {
    const alive = live();
    const node = nodeAt(i);
    const outside = alive.filter((x) => !nodeAt(x).nodes().includes(nodeAt(x).id) && nodeAt(x).nodes().length > 0);
    const insider = alive.find((x) => nodeAt(x).nodes().includes(nodeAt(x).id) && x !== i);
    faultPoint();
    // The 'members' mix sometimes removes another node while one is out; the others keep their schedules.
    if (outside.length > 0 && insider !== undefined && (options.mix !== 'members' || rnd.next() < 0.6)) {
      const back = nodeAt(rnd.pick(outside));
      trace(`rejoin ${back.id} via ${nodeAt(insider).id}`);
      quiet(back.join(`memory://${nodeAt(insider).id}`));
    } else if (node.nodes().length > 3) {
      const gone = rnd.pick(node.nodes().filter((x) => x !== node.id));
      trace(`leave ${gone} via ${node.id}`);
      quiet(node.leave(gone));
    }
  };
  const quiet = (p: Promise<unknown>): void => { p.catch(() => {}); };
  const restartAt = new Map<number, number>();

  const steps = options.steps ?? 60;
  for (let step = 0; step < steps; step++) {
    for (const [i, at] of restartAt) {
      if (clock.now() >= at) {
        restartAt.delete(i);
        down.delete(i);
        const node = await cluster.restart(i);
        watch(node);
        faultPoint();
        trace(`restart ${cluster.ids[i]}`);
      }
    }
    const alive = live();
    const i = rnd.pick(alive);
    const node = nodeAt(i);
    const r = rnd.next();
    const name = rnd.pick(NAMES);
    if (r < 0.32) {
      const o = rnd.next() < 0.5 && ownersOf(i).length > 0 ? rnd.pick(ownersOf(i)) : spawn(i);
      trace(`register ${name} on ${node.id} for ${key(o.ref)}`);
      quiet(node.register(name, o));
    } else if (r < 0.42) {
      const list = ownersOf(i);
      if (list.length > 0) {
        const o = rnd.pick(list);
        trace(`exit ${key(o.ref)}`);
        o.exit(rnd.next() < 0.5 ? 'normal' : new Error('crash'));
      }
    } else if (r < 0.5) {
      trace(`unregister ${name} via ${node.id}`);
      quiet(node.unregister(name));
    } else if (r < 0.58) {
      const j = rnd.pick(alive);
      const o = spawn(j);
      trace(`update ${name} -> ${key(o.ref)} via ${node.id}`);
      quiet(node.update(name, o));
    } else if (r < 0.64) {
      faultStart();
      if (rnd.next() < 0.5) {
        trace(`isolate ${node.id}`);
        net.isolate(node.id);
      } else {
        const shuffled = [...cluster.ids].sort(() => rnd.next() - 0.5);
        const cut = rnd.int(1, n - 1);
        trace(`partition ${shuffled.slice(0, cut)} | ${shuffled.slice(cut)}`);
        net.partition(shuffled.slice(0, cut), shuffled.slice(cut));
      }
    } else if (r < 0.72) {
      trace('heal');
      net.heal();
      net.set({ loss: 0, duplicate: 0, minDelay: 0, maxDelay: 2 });
      if (openFault !== undefined) openFault.to = clock.now() + 4 * HEARTBEAT;
      openFault = undefined;
    } else if (r < 0.77) {
      const loss = rnd.next() < 0.5 ? 0 : rnd.next() * 0.2;
      const duplicate = rnd.next() * 0.1;
      const maxDelay = rnd.int(0, 30);
      trace(`conditions loss=${loss.toFixed(2)} dup=${duplicate.toFixed(2)} delay<=${maxDelay}`);
      if (loss > 0) faultStart();
      net.set({ loss, duplicate, minDelay: 0, maxDelay });
    } else if (r < 0.8 && alive.length > 1) {
      trace(`crash ${node.id}`);
      down.add(i);
      await cluster.crash(i);
      faultPoint();
      restartAt.set(i, clock.now() + rnd.int(200, 6 * HEARTBEAT));
    } else if (options.mix === 'members' && r >= 0.8 && alive.length > 2) {
      // A guard that asked the list it had when it started may commit after a change, at nodes that
      // adopted the new list; a second change right after must not count such a value as settled.
      const lagging = rnd.next() < 0.5;
      if (lagging) {
        faultStart();
        trace(`members: isolate ${node.id}, register ${name} there`);
        net.isolate(node.id);
        quiet(node.register(name, spawn(i)));
        await cluster.advance(rnd.int(0, 50));
      }
      changeMembers(rnd.pick(alive.filter((x) => x !== i)));
      await cluster.advance(rnd.int(0, 400));
      if (lagging) {
        // The cut-off node reaches some of the others again, not all.
        net.heal();
        const still = cluster.ids.filter((x) => x !== node.id && rnd.next() < 0.5);
        trace(`members: ${node.id} reaches all but ${still.join(' ')}`);
        for (const x of still) {
          net.cutOneWay(node.id, x);
          net.cutOneWay(x, node.id);
        }
        await cluster.advance(rnd.int(0, 200));
      }
      changeMembers(rnd.pick(live()));
    } else if (options.mix === 'races' && r >= 0.83 && alive.length > 1) {
      // Two nodes act on one name a few milliseconds apart (the network delay is up to 30 ms).
      const j = rnd.pick(alive.filter((x) => x !== i));
      const other = nodeAt(j);
      const gap = rnd.int(0, 8);
      const first = rnd.next();
      const holderHere = ownersOf(i).find((o) => node.registration(name)?.owner.id === o.ref.id);
      // The owner the first action is about: the registering one, the handoff's target, or the holder.
      let involved: Owner | undefined;
      if (first < 0.3 || (first >= 0.85 && holderHere === undefined)) {
        involved = spawn(i);
        trace(`race: register ${name} on ${node.id} for ${key(involved.ref)}`);
        quiet(node.register(name, involved));
      } else if (first < 0.7) {
        involved = spawn(rnd.pick(alive));
        trace(`race: update ${name} -> ${key(involved.ref)} via ${node.id}`);
        quiet(node.update(name, involved));
      } else if (first < 0.85) {
        trace(`race: unregister ${name} via ${node.id}`);
        quiet(node.unregister(name));
      } else if (holderHere !== undefined) {
        trace(`race: holder ${key(holderHere.ref)} of ${name} exits`);
        holderHere.exit(rnd.next() < 0.5 ? 'normal' : new Error('crash'));
      }
      await cluster.advance(gap);
      const second = rnd.next();
      if (second < 0.2 && involved?.alive === true) {
        // The owner exits while its registration or handoff is in flight (or just granted).
        trace(`race: ${gap} ms later, ${key(involved.ref)} exits`);
        involved.exit(rnd.next() < 0.5 ? 'normal' : new Error('crash'));
      } else if (second >= 0.82 && second < 0.88 && other.nodes().length > 3 && other.nodes().includes(node.id)) {
        // A membership change races the first action: the node it ran on is removed from the cluster.
        faultPoint();
        trace(`race: ${gap} ms later, leave ${node.id} via ${other.id}`);
        quiet(other.leave(node.id));
      } else if (second < 0.88) {
        const b = spawn(j);
        trace(`race: ${gap} ms later, register ${name} on ${other.id} for ${key(b.ref)}`);
        quiet(other.register(name, b));
      } else {
        trace(`race: ${gap} ms later, unregister ${name} via ${other.id}`);
        quiet(other.unregister(name));
      }
    } else if (options.mix === 'joins' && r >= 0.8) {
      const insiders = alive.filter((x) => nodeAt(x).nodes().includes(nodeAt(x).id));
      if (cluster.nodes.length < n + 2 && insiders.length > 0) {
        // A new node joins through a member that may crash right after (it may have added it or not).
        const via = rnd.pick(insiders);
        const crashSeed = alive.length > 2 && rnd.next() < 0.5;
        const after = rnd.int(0, 60);
        const back = rnd.int(200, 6 * HEARTBEAT);
        const fresh = cluster.add(via);
        watch(fresh.node);
        faultPoint();
        trace(`join ${fresh.node.id} via ${nodeAt(via).id}${crashSeed ? `, which crashes ${after} ms later` : ''}`);
        fresh.started.then(() => trace(`joined ${fresh.node.id}`), () => trace(`join of ${fresh.node.id} failed`));
        if (crashSeed) {
          await cluster.advance(after);
          if (!down.has(via)) {
            trace(`crash ${nodeAt(via).id}`);
            down.add(via);
            await cluster.crash(via);
            faultPoint();
            restartAt.set(via, clock.now() + back);
          }
        }
      } else if (alive.length > 2) {
        changeMembers(i);
      }
    } else if (r >= 0.8 && r < 0.83 && alive.length > 2) {
      // Membership: remove a node (it keeps running outside the cluster) or bring a removed one back.
      changeMembers(i);
    }
    await cluster.advance(rnd.int(1, 1500));
  }

  // Heal everything, bring crashed nodes back, let the cluster settle, then compare views.
  trace('final heal');
  net.heal();
  net.set({ loss: 0, duplicate: 0, minDelay: 0, maxDelay: 0 });
  if (openFault !== undefined) openFault.to = clock.now() + 4 * HEARTBEAT;
  for (const i of [...restartAt.keys()]) {
    restartAt.delete(i);
    down.delete(i);
    watch(await cluster.restart(i));
    faultPoint();
  }
  // Operations still in flight (a leave started under a partition, say) finish or time out first.
  await cluster.advance(8 * HEARTBEAT);
  // Nodes removed from the cluster come back, as an operator would bring them; a new node that never
  // got in (its join failed, or still tries through a seed that is gone) is started again.
  for (let attempt = 0; attempt < 20; attempt++) {
    const outside = cluster.nodes.map((x, i) => ({ x, i })).filter(({ x }) => !x.nodes().includes(x.id));
    const insider = cluster.nodes.find((x) => x.nodes().includes(x.id));
    if (outside.length === 0 || insider === undefined) break;
    for (const { x, i } of outside) {
      if (x.nodes().length === 0) {
        trace(`final restart ${x.id}`);
        watch(await cluster.restart(i));
        continue;
      }
      trace(`final rejoin ${x.id}`);
      await cluster.run(x.join(`memory://${insider.id}`).catch(() => {}), 60_000);
    }
    await cluster.advance(HEARTBEAT);
  }
  await cluster.advance(10 * HEARTBEAT);

  const violations = checkHistory(history, {
    faultBetween: (from, to) => faults.some((f) => f.from <= to && f.to >= from),
    lostWindow: 4 * HEARTBEAT,
  });
  const divergent: string[] = [];
  const held = heldAtEnd(history);
  for (const name of NAMES) {
    const views: string[] = [];
    for (const node of cluster.nodes) {
      try {
        const ref = await cluster.run(node.whereis(name), 20_000);
        views.push(ref === undefined ? '-' : key(ref));
      } catch (e) {
        views.push(`error:${(e as Error).name}`);
      }
    }
    const expect = held.get(name)?.owner ?? '-';
    if (views.some((v) => v !== expect)) divergent.push(`${name}: holder ${expect}, views ${views.join(' ')}`);
  }
  await stopQuietly(cluster);
  return {
    seed: options.seed, violations, divergent, steps,
    grants: history.filter((e) => e.type === 'grant').length,
    ends: history.filter((e) => e.type === 'end').length,
  };
}

async function stopQuietly(cluster: TestCluster): Promise<void> {
  try {
    await cluster.stop();
  } catch {
    // A node that fails to stop would show up as a leak in other tests; the simulation's verdict stands.
  }
}
