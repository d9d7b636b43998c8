// Piscina worker entry for the history reader pool (engine/history/journal-reader.ts): registers the tsx
// loader (Node cannot start a worker on a .ts file; see engine/worker-boot.mjs), then hands piscina the
// TypeScript task handler as the default export.
import { register } from 'tsx/esm/api';

register();
const mod = await import(new URL('./pool-task.ts', import.meta.url).href);
export default mod.default;
