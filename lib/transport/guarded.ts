/**
 * Calling the layer above from the transport's own loops (a receive loop, a timer, an end-of-turn
 * flush) without letting its exception stop them.
 */

/** Calls `fn`; an exception surfaces as uncaught, as from any callback, but only after this call returns. */
export function guarded(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    queueMicrotask(() => {
      throw err;
    });
  }
}
