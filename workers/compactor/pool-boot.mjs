// Piscina worker entry for the compactor pool (workers/compactor/pool.ts). Piscina imports this file in
// each pool thread; like engine/worker-boot.mjs it registers the tsx loader first (Node cannot start a
// worker on a .ts file), then hands piscina the TypeScript task dispatcher as the default export.
import { register } from 'tsx/esm/api';

register();
const mod = await import(new URL('./tasks.ts', import.meta.url).href);
export default mod.default;
