/**
 * Cluster-wide settings (the seed's cfg set/get). Each key holds a number with a version; a set bumps
 * the version above every version seen, and gossip spreads entries, the higher (version, node id)
 * winning, so every node converges on the same values.
 */
import { ConfigError, InvalidArgumentError } from '../errors.js';
import type { ConfigEntry } from '../protocol/messages.js';

/** The settings and their defaults. */
export const DEFAULT_SETTINGS = {
  /** Guard heartbeat in ms (floor 1000; a value expires after 3 missed heartbeats). */
  heartbeat: 8048,
  /** Entries free for longer than this many ms are deleted. */
  deleteTimeThreshold: 200_000,
  /** At most this many entries are deleted per cleanup pass. */
  deleteLimit: 100,
  /** Cleanup runs every this many ms (plus jitter). */
  cleanupPeriod: 5001,
  /** A promise not followed by a commit within this many ms is withdrawn. */
  promiseTtl: 3000,
} as const;

export type SettingKey = keyof typeof DEFAULT_SETTINGS;
export type Settings = { -readonly [K in SettingKey]: number };

const BOUNDS: Record<SettingKey, readonly [number, number]> = {
  heartbeat: [1, 3_600_000],
  deleteTimeThreshold: [1000, 86_400_000],
  deleteLimit: [1, 1_000_000],
  cleanupPeriod: [100, 3_600_000],
  promiseTtl: [100, 600_000],
};

/** True for a known setting key. */
export function isSettingKey(key: string): key is SettingKey {
  return Object.hasOwn(DEFAULT_SETTINGS, key);
}

/** Checks a value for a key; throws InvalidArgumentError or ConfigError. */
export function validateSetting(key: string, value: unknown): asserts key is SettingKey {
  if (!isSettingKey(key)) throw new ConfigError(key, `unknown setting: ${key}`);
  const [lo, hi] = BOUNDS[key];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < lo || value > hi) {
    throw new InvalidArgumentError(key, `${key} must be an integer in [${lo}, ${hi}]`);
  }
}

/**
 * Whether `a` wins over `b`: higher version, then higher node id, then (a restarted node reusing a
 * version) higher value, so every node picks the same entry whatever order they arrive in.
 */
function newer(a: ConfigEntry, b: ConfigEntry): boolean {
  if (a.version !== b.version) return a.version > b.version;
  if (a.by !== b.by) return a.by > b.by;
  return a.value > b.value;
}

export class ClusterConfig {
  readonly #self: string;
  readonly #entries = new Map<SettingKey, ConfigEntry>();
  readonly #values: Settings;
  #onChange: (key: SettingKey, value: number) => void = () => {};

  constructor(self: string, initial: Partial<Settings> = {}) {
    this.#self = self;
    this.#values = { ...DEFAULT_SETTINGS };
    // Start-up settings are entries of version 0: they spread by gossip, and any later set wins over them.
    for (const [k, v] of Object.entries(initial)) {
      validateSetting(k, v);
      this.merge([{ key: k, value: v as number, version: 0, by: self }]);
    }
  }

  onChange(fn: (key: SettingKey, value: number) => void): void {
    this.#onChange = fn;
  }

  /** Current values (a live view: read it when needed, do not keep it). */
  get values(): Readonly<Settings> {
    return this.#values;
  }

  get(key: SettingKey): number {
    return this.#values[key];
  }

  /** Sets a value cluster-wide; returns the entry to gossip. */
  set(key: string, value: unknown): ConfigEntry {
    validateSetting(key, value);
    let version = 0;
    for (const e of this.#entries.values()) version = Math.max(version, e.version);
    const entry: ConfigEntry = { key, value: value as number, version: version + 1, by: this.#self };
    this.merge([entry]);
    return entry;
  }

  /** Every entry set so far (what gossip carries). */
  entries(): ConfigEntry[] {
    return [...this.#entries.values()];
  }

  /** Adopts newer entries; ignores unknown keys and invalid values (they change nothing). */
  merge(entries: readonly ConfigEntry[]): boolean {
    let changed = false;
    for (const e of entries) {
      if (!isSettingKey(e.key)) continue;
      try {
        validateSetting(e.key, e.value);
      } catch {
        continue;
      }
      const cur = this.#entries.get(e.key);
      if (cur !== undefined && !newer(e, cur)) continue;
      this.#entries.set(e.key, e);
      if (this.#values[e.key] !== e.value) {
        this.#values[e.key] = e.value;
        this.#onChange(e.key, e.value);
      }
      changed = true;
    }
    return changed;
  }
}
