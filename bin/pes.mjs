#!/usr/bin/env node
/**
 * The `pes` command (see `pes --help`). Exit codes: 0 ok, 1 failure, 2 usage error.
 *
 * From a published package it runs the compiled `dist/lib/cli/main.js`; from the source tree, where
 * nothing is compiled, it registers tsx (a dev dependency) and runs `lib/cli/main.ts` itself.
 */
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/lib/cli/main.js', import.meta.url);

/** Loads the CLI module: compiled when present, else the TypeScript source through tsx. */
async function load() {
  if (existsSync(compiled)) return import(compiled.href);
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch (e) {
    process.stderr.write('pes: no compiled CLI (dist/) and tsx is not installed: run `npm run build` or `npm install`\n');
    throw e;
  }
  register();
  return import(new URL('../lib/cli/main.ts', import.meta.url).href);
}

let code;
try {
  const { main } = await load();
  code = await main(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`pes: ${e && e.stack ? e.stack : e}\n`);
  code = 1;
}
process.exitCode = code;
// Everything the command opened is closed by now, so the process ends on its own; should anything
// still hold the event loop, this ends it (unref: it never keeps the process alive itself).
setTimeout(() => process.exit(code), 2000).unref();
