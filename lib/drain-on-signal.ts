/**
 * `Pes.start({ drainOnSignal })`: SIGTERM or SIGINT drains the node (every singleton it runs moves to
 * another node), stops it and exits 0, as the old process of a rolling restart should.
 */
import type { DrainReport } from './singleton.js';

/** The node operations a signal runs. */
export interface Drainable {
  drain(opts: { timeout?: number }): Promise<DrainReport>;
  stop(): Promise<void>;
}

/**
 * Installs the SIGTERM/SIGINT handler `option` asks for (none for `undefined` or `false`); returns
 * what removes it again, which the node calls when it stops.
 */
export function hookDrainOnSignal(option: boolean | { readonly timeout?: number } | undefined, node: Drainable): (() => void) | undefined {
  if (option === undefined || option === false) return undefined;
  const timeout = typeof option === 'object' ? option.timeout ?? 30_000 : 30_000;
  let once = false;
  const handler = (): void => {
    if (once) return;
    once = true;
    void node.drain({ timeout }).catch(() => undefined).then(() => node.stop()).finally(() => process.exit(0));
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}
