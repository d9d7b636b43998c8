// Worker entry: the demo source of `npm start`. Writes a simulated MNQ/NQ/MES market as real Sierra Chart
// files in real time (workers/sim/sim-files.ts); the Sierra source workers tail them like the real thing.
// Stops on the supervisor's {code:'STOP'} message (or when the thread is terminated).
import { parentPort, workerData } from 'node:worker_threads';
import { installFatalHandlers, post } from './protocol.ts';
import { runLive, type LiveOptions } from './sim/sim-files.ts';

const data = workerData as { name: string; live: LiveOptions };
installFatalHandlers(data.name);
const ac = new AbortController();
parentPort?.on('message', (m: unknown) => {
  if (typeof m === 'object' && m !== null && (m as { code?: unknown }).code === 'STOP') ac.abort();
});
let trades = 0;
const done = runLive({ ...data.live, onFlush: (t) => { trades = t; } }, ac.signal);
post({ code: 'READY', name: data.name });
const stats = await done;
post({ code: 'STOPPED', name: data.name, stats: { trades: stats.trades, depthRecords: stats.depthRecords, lastTrades: trades } });
parentPort?.close();
