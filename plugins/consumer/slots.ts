/**
 * The concurrency gate of one ownership: at most `limit` jobs taken (reserved or running) at once.
 * @internal
 */
export class Slots {
  readonly #limit: number;
  /** Slots taken (reserved or running); waiters get a slot handed over directly, in order. */
  #taken = 0;
  readonly #waiters: ((ok: boolean) => void)[] = [];

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** A slot: at once when one is free and nobody waits, else when one is handed over (or false, see {@link refuseWaiters}). */
  acquire(): Promise<boolean> {
    if (this.#taken < this.#limit && this.#waiters.length === 0) {
      this.#taken++;
      return Promise.resolve(true);
    }
    return new Promise<boolean>((resolve) => this.#waiters.push(resolve));
  }

  /** Frees a slot, or hands it straight to the next waiter (so nobody can slip in between). */
  release(): void {
    const next = this.#waiters.shift();
    if (next !== undefined) next(true);
    else this.#taken--;
  }

  /** Every waiter gets `false` (consumption stops): none of them holds a slot. */
  refuseWaiters(): void {
    for (const w of this.#waiters.splice(0)) w(false);
  }
}
