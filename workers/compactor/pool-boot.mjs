// Piscina worker entry for the compactor pool (workers/compactor/pool.ts). Piscina imports this file in
// each pool thread; like engine/worker-boot.mjs it registers the tsx loader first (Node cannot start a
// worker on a .ts file), then hands piscina the TypeScript task dispatcher as the default export.
import { register } from 'tsx/esm/api';

register();
// background work: lower this thread's CPU priority before DuckDB starts its threads (they inherit it)
const prio = await import(new URL('../../engine/thread-priority.ts', import.meta.url).href);
prio.nameThisThread('tp:compactor');
const nice = Number(process.env.TICKPIPE_THREAD_NICE ?? 0);
if (nice > 0) prio.setThreadNice(nice);
const mod = await import(new URL('./tasks.ts', import.meta.url).href);
export default mod.default;
