/**
 * Reads a V8 `.cpuprofile` (as written by `node --cpu-prof`) and summarises where the time went:
 * self time per function, inclusive time per function, and self time per source file / category.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import os from 'node:os';
import path from 'node:path';

interface CallFrame { functionName: string; url: string; lineNumber: number; columnNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

export interface FunctionTime {
  readonly key: string;
  readonly selfMs: number;
  readonly totalMs: number;
}

export interface ProfileSummary {
  readonly file: string;
  /** Wall time the profile covers, ms. */
  readonly spanMs: number;
  /** Time not idle (everything but the `(idle)` node), ms. */
  readonly busyMs: number;
  readonly functions: FunctionTime[];
  readonly byFile: { readonly key: string; readonly selfMs: number }[];
}

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

/**
 * Source positions: tsx compiles each TypeScript file to one minified line, so a profile's line and
 * column point into that. tsx caches each compiled file with its source map in os.tmpdir()/tsx-<uid>;
 * the newest cached map of a source file turns a profile position back into a line of the .ts file.
 */
let maps: Map<string, SourceMap> | undefined;

function sourceMaps(): Map<string, SourceMap> {
  if (maps !== undefined) return maps;
  maps = new Map();
  const newest = new Map<string, number>();
  const dir = path.join(os.tmpdir(), `tsx-${process.getuid?.() ?? 0}`);
  let files: string[] = [];
  try {
    files = readdirSync(dir);
  } catch {
    return maps;
  }
  for (const f of files) {
    const full = path.join(dir, f);
    try {
      const text = readFileSync(full, 'utf8');
      if (!text.includes(ROOT)) continue;
      const entry = JSON.parse(text) as { map?: { sources?: string[] } & Record<string, unknown> };
      const source = entry.map?.sources?.[0];
      if (source === undefined || !source.startsWith(ROOT)) continue;
      const mtime = statSync(full).mtimeMs;
      if ((newest.get(source) ?? -1) >= mtime) continue;
      newest.set(source, mtime);
      maps.set(source, new SourceMap(entry.map as unknown as SourceMapPayload));
    } catch {
      // not a tsx cache entry
    }
  }
  return maps;
}

const BUILD = path.join(ROOT, 'bench', '.build');
const builtMaps = new Map<string, SourceMap | undefined>();

/** The source map tsc wrote next to a compiled file in bench/.build. */
function builtMap(file: string): SourceMap | undefined {
  if (!builtMaps.has(file)) {
    try {
      builtMaps.set(file, new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')) as SourceMapPayload));
    } catch {
      builtMaps.set(file, undefined);
    }
  }
  return builtMaps.get(file);
}

/** 1-based line in the original source of a 0-based profile position, when a source map knows it. */
function originalLine(url: string, line: number, column: number): number | undefined {
  const file = url.startsWith('file://') ? new URL(url).pathname : url;
  const map = file.startsWith(BUILD) ? builtMap(file) : sourceMaps().get(file);
  if (map === undefined) return undefined;
  const e = map.findEntry(line, column) as { originalLine?: number };
  return e.originalLine === undefined ? undefined : e.originalLine + 1;
}

/** A short, stable label of a source location: lib/guard/guard.ts:88, node:internal/..., zeromq, ... */
function where(url: string): string {
  if (url === '') return '';
  let p = url.startsWith('file://') ? new URL(url).pathname : url;
  // Compiled files stand for their sources: bench/.build/lib/x.js -> lib/x.ts.
  if (p.startsWith(BUILD)) p = path.join(ROOT, path.relative(BUILD, p)).replace(/\.js$/, '.ts');
  if (p.startsWith(ROOT)) p = path.relative(ROOT, p);
  const nm = p.lastIndexOf('node_modules/');
  if (nm >= 0) p = p.slice(nm + 'node_modules/'.length);
  return p;
}

function category(url: string, fn: string): string {
  if (url === '') return fn.startsWith('(') ? fn : '(native)';
  const w = where(url);
  if (w.startsWith('lib/') || w.startsWith('bench/')) return w;
  if (w.startsWith('node:')) return w.split('/').slice(0, 2).join('/');
  return w.split('/')[0] ?? w;
}

/** Summarises one profile, optionally only the samples within [fromMs, toMs] of its start. */
export function summarise(file: string, window?: { fromMs: number; toMs: number }): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const key = (n: ProfileNode): string => {
    const f = n.callFrame;
    const loc = where(f.url);
    const line = originalLine(f.url, f.lineNumber, f.columnNumber) ?? f.lineNumber + 1;
    return `${f.functionName || '(anonymous)'}${loc === '' ? '' : ` ${loc}:${line}`}`;
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const files = new Map<string, number>();
  let t = 0;
  let busyUs = 0;
  let spanUs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (window !== undefined && (t / 1000 < window.fromMs || t / 1000 > window.toMs)) continue;
    spanUs += dt;
    const node = byId.get(p.samples[i] as number);
    if (node === undefined) continue;
    const k = key(node);
    if (node.callFrame.functionName === '(idle)') continue;
    busyUs += dt;
    self.set(k, (self.get(k) ?? 0) + dt);
    const cat = category(node.callFrame.url, node.callFrame.functionName);
    files.set(cat, (files.get(cat) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const n = byId.get(id);
      if (n === undefined) break;
      const nk = key(n);
      if (seen.has(nk)) continue;
      seen.add(nk);
      total.set(nk, (total.get(nk) ?? 0) + dt);
    }
  }
  const functions = [...total.keys()]
    .filter((k) => k !== '(root)')
    .map((k) => ({ key: k, selfMs: (self.get(k) ?? 0) / 1000, totalMs: (total.get(k) ?? 0) / 1000 }));
  return {
    file,
    spanMs: spanUs / 1000,
    busyMs: busyUs / 1000,
    functions,
    byFile: [...files.entries()].map(([k, v]) => ({ key: k, selfMs: v / 1000 })).sort((a, b) => b.selfMs - a.selfMs),
  };
}
