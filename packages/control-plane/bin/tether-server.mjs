#!/usr/bin/env node
// `tether-server serve` first holds its port (boot-listener.mjs: clients are told "starting,
// come back at your slot" instead of being refused while the server loads; decision 0023). Then the
// bundle when it is fresh (`pnpm start` builds it), else the TypeScript CLI through tsx's
// loader (source-first package: docs/decisions/0001, 0022).
import { openBootListener } from './boot-listener.mjs';
import { BUNDLE, chooseEntry } from './entry.mjs';

const args = process.argv.slice(2);
const command = args.find((arg) => !arg.startsWith('-')) ?? 'serve';
if (command === 'serve' && !args.includes('--help')) await openBootListener();

if (chooseEntry() === 'bundle') {
  // Stack traces name the TypeScript sources (the bundle has a linked source map).
  process.setSourceMapsEnabled(true);
  await import(BUNDLE);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/server/cli.ts');
}
