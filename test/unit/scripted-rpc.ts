/**
 * A request layer for unit tests: records every message sent and answers each with what `reply`
 * returns for it (in a microtask, to the handler its request id was opened with).
 */
import type { Message } from '../../lib/protocol/messages.js';
import type { Rpc } from '../../lib/rpc.js';

export function scripted(reply: (to: string, msg: Message) => Message | undefined): { rpc: Rpc; sent: { to: string; msg: Message }[] } {
  const handlers = new Map<number, (from: string, m: Message) => void>();
  const sent: { to: string; msg: Message }[] = [];
  let next = 1;
  const rpc = {
    open(h: (from: string, m: Message) => void) { handlers.set(next, h); return next++; },
    close(rid: number) { handlers.delete(rid); },
    send(to: string, msg: Message) {
      sent.push({ to, msg });
      const r = reply(to, msg);
      if (r !== undefined) queueMicrotask(() => handlers.get((msg as { rid: number }).rid)?.(to, r));
    },
  } as unknown as Rpc;
  return { rpc, sent };
}
