/**
 * The plugin contract: how a worker-framework adapter attaches to a node. `node.use(plugin)` runs its
 * `setup` (where it declares singletons, watches names and hooks into the framework); the node calls its
 * `stop` first when the node stops, in reverse order of `use`.
 */
import type { PesNode } from './node.js';

export interface PesPlugin {
  /** A name for reports and errors. */
  readonly name: string;
  setup(node: PesNode): void | Promise<void>;
  stop?(): void | Promise<void>;
}
