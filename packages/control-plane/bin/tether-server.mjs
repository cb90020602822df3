#!/usr/bin/env node
// The bundle when it is fresh (`pnpm start` builds it), else the TypeScript CLI through tsx's
// loader (source-first package: docs/decisions/0001, 0022).
import { BUNDLE, chooseEntry } from './entry.mjs';

if (chooseEntry() === 'bundle') {
  // Stack traces name the TypeScript sources (the bundle has a linked source map).
  process.setSourceMapsEnabled(true);
  await import(BUNDLE);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/server/cli.ts');
}
