#!/usr/bin/env node
// Runs the TypeScript CLI through tsx's loader (source-first package; see docs/decisions/0001).
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
