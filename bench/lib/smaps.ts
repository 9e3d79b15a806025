/**
 * Where a process's resident memory is, from /proc/<pid>/smaps (Linux only; empty elsewhere): file-backed
 * pages (the node binary and libraries, shared with every node process), the V8 heap's pages, malloc's
 * main heap, and other anonymous mappings (thread arenas, large malloc blocks such as ArrayBuffers).
 */
import { readFileSync } from 'node:fs';

export interface ResidentParts { readonly [part: string]: number }

/** Resident bytes per part of process `pid`. */
export function residentParts(pid: number): ResidentParts {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return {};
  }
  const parts: Record<string, number> = {};
  let part = '';
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m !== null) {
      const lo = BigInt(`0x${m[1]}`);
      const hi = BigInt(`0x${m[2]}`);
      const what = (m[3] ?? '').trim();
      if (what.startsWith('/')) part = 'files';
      else if (what === '[heap]') part = 'malloc heap';
      else if (what !== '') part = 'other';
      // V8 reserves its heap away from the 0x7f.. region where mmap places libraries, stacks and arenas.
      else if (lo < 0x7f0000000000n && lo > 0x100000000000n) part = 'V8 heap';
      else part = hi - lo >= 60n * 2n ** 20n ? 'thread arenas' : 'anonymous';
      continue;
    }
    if (line.startsWith('Rss:')) parts[part] = (parts[part] ?? 0) + Number(line.split(/\s+/)[1]) * 1024;
  }
  return parts;
}
