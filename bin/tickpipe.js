#!/usr/bin/env node
// Entry of the `tickpipe` command. Registers the tsx loader (how TypeScript runs everywhere in this
// project: see README "How TypeScript runs") and hands over to the TypeScript CLI.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../scripts/tickpipe.ts');
await main(process.argv);
