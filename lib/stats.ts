/**
 * Measurements for `stat()`: latency samples with percentiles, and per-second rates over a window.
 */
import type { Clock } from './clock.js';

/** Keeps the last `size` samples; percentiles come from a sorted copy. */
export class LatencyWindow {
  readonly #samples: number[] = [];
  readonly #size: number;
  #next = 0;
  count = 0;

  constructor(size = 1024) {
    this.#size = size;
  }

  record(ms: number): void {
    this.count++;
    if (this.#samples.length < this.#size) this.#samples.push(ms);
    else this.#samples[this.#next] = ms;
    this.#next = (this.#next + 1) % this.#size;
  }

  /** The p-th percentile (0..100) of the kept samples, or 0 when there are none. */
  percentile(p: number): number {
    if (this.#samples.length === 0) return 0;
    const sorted = [...this.#samples].sort((a, b) => a - b);
    const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
    return sorted[i] ?? 0;
  }

  summary(): LatencySummary {
    return { count: this.count, p50: this.percentile(50), p99: this.percentile(99) };
  }
}

export interface LatencySummary { readonly count: number; readonly p50: number; readonly p99: number }

/**
 * Events per second over the last `windowMs`, from a running counter. The owner samples the counter
 * regularly (`sample`, about once a second); `rate` reads it at any time.
 */
export class RateMeter {
  readonly #clock: Clock;
  readonly #windowMs: number;
  readonly #read: () => number;
  readonly #points: { at: number; total: number }[];

  constructor(clock: Clock, read: () => number, windowMs = 10_000) {
    this.#clock = clock;
    this.#read = read;
    this.#windowMs = windowMs;
    this.#points = [{ at: clock.now(), total: read() }];
  }

  /** Records the counter now, forgetting samples older than the window (one is kept as its start). */
  sample(): void {
    const now = this.#clock.now();
    this.#points.push({ at: now, total: this.#read() });
    while (this.#points.length > 2 && (this.#points[1]?.at ?? now) <= now - this.#windowMs) this.#points.shift();
  }

  /** Per second, from the oldest kept sample to now. */
  rate(): number {
    this.sample();
    const now = this.#clock.now();
    const first = this.#points[0];
    const total = this.#read();
    if (first === undefined || now - first.at <= 0) return 0;
    return ((total - first.total) * 1000) / (now - first.at);
  }
}
