/**
 * Who to ask first. A request that needs a majority asks this node (its own acceptor answers without a
 * network hop) and just enough reachable peers to make a majority, taken in turn so the load spreads;
 * the other members are asked only when one of those refuses, disagrees or is slow. On a busy machine
 * or network this halves the work of a read or a registration in a three-node cluster.
 */

/** The members to ask first, and the rest; everyone first when too few peers are reachable. */
export function firstWave(
  members: readonly string[], self: string | undefined, reachable: ((node: string) => boolean) | undefined, turn: number,
): { readonly first: readonly string[]; readonly rest: readonly string[] } {
  const needed = Math.floor(members.length / 2) + 1;
  const me = self !== undefined && members.includes(self) ? self : undefined;
  const peers = members.filter((m) => m !== me);
  const ready = reachable === undefined ? peers : peers.filter((p) => reachable(p));
  const want = needed - (me === undefined ? 0 : 1);
  if (ready.length < want || want >= peers.length) return { first: members, rest: [] };
  const k = ready.length === 0 ? 0 : ((turn % ready.length) + ready.length) % ready.length;
  const chosen = [...ready.slice(k), ...ready.slice(0, k)].slice(0, want);
  const first = me === undefined ? chosen : [me, ...chosen];
  return { first, rest: members.filter((m) => !first.includes(m)) };
}
