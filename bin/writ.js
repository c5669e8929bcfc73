#!/usr/bin/env node
// Runs the TypeScript CLI directly through tsx's loader, so `npx writ` works in a fresh clone.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
