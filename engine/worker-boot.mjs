// Bootstrap for every tickpipe worker thread.
//
// Why: Node 20 cannot start a Worker on a .ts entry even when the parent runs under a loader, because
// the worker's entry format is resolved before `--import` hooks apply. Every worker therefore starts
// here, registers the same tsx loader the main thread uses, and then imports its real entry. This is
// the one way TypeScript runs in tickpipe: production (`bin/tickpipe.js`), vitest and benchmarks all
// load the same .ts sources through tsx, so a worker behaves identically everywhere.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const entry = workerData && workerData.__tickpipeEntry;
if (typeof entry !== 'string') throw new Error('worker-boot: workerData.__tickpipeEntry is missing');
await import(entry);
