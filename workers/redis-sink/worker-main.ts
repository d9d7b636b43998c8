/**
 * Body of `workers/redis-sink.worker.ts`: run a RedisSink on the worker's ring and report through the
 * worker protocol (READY, STATS every `statsIntervalMs`, WARN per distinct error, STOPPED, FATAL).
 * The status buffer (`status`) is readable from the main thread at any time with `readRedisSinkStatus`.
 * Stops when the supervisor sets the ring STOPPED (after draining it) or posts `{ code: 'STOP' }`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { toWire } from '../../engine/errors.ts';
import { installFatalHandlers, post } from '../protocol.ts';
import { setThreadNice } from '../../engine/thread-priority.ts';
import { RedisSink, type RedisSinkOptions } from './sink.ts';
import { SinkStateCode, readRedisSinkStatus } from './status.ts';

export interface RedisSinkWorkerData extends Omit<RedisSinkOptions, 'now' | 'onError' | 'redisOptions' | 'redisUrl'> {
  name: string;
  /** REDIS_URL; when absent the worker reads `process.env.REDIS_URL`. null or '' = disabled. */
  redisUrl?: string | null;
  status: SharedArrayBuffer;
  /** STATS message period (default 1000 ms). */
  statsIntervalMs?: number;
  /** Nice value of the sink's thread (0 = normal, up to 19; default 0): the Redis mirror is background work. */
  nice?: number;
}

function statsOf(sab: SharedArrayBuffer): Record<string, number> {
  const s = readRedisSinkStatus(sab);
  const out: Record<string, number> = { stateCode: SinkStateCode[s.state] };
  for (const [k, v] of Object.entries(s)) if (typeof v === 'number') out[k] = v;
  return out;
}

export async function runRedisSinkWorker(): Promise<void> {
  const data = workerData as RedisSinkWorkerData;
  const name = data.name;
  installFatalHandlers(name);
  const { statsIntervalMs = 1000, redisUrl, nice = 0, ...opts } = data;
  if (nice > 0) setThreadNice(nice);
  const sink = new RedisSink({
    ...opts,
    redisUrl: redisUrl === undefined ? process.env.REDIS_URL : redisUrl,
    onError: (err) => post({ code: 'WARN', name, message: `${err.code}: ${err.message}`, detail: { code: err.code } }),
  });
  parentPort?.on('message', (m: unknown) => {
    if (typeof m === 'object' && m !== null && (m as { code?: unknown }).code === 'STOP') void sink.stop();
  });
  const timer = setInterval(() => post({ code: 'STATS', name, stats: statsOf(data.status) }), statsIntervalMs);
  post({ code: 'READY', name });
  try {
    await sink.run();
  } catch (err) {
    post({ code: 'FATAL', name, error: toWire(err) });
    throw err;
  } finally {
    clearInterval(timer);
  }
  post({ code: 'STOPPED', name, stats: statsOf(data.status) });
  parentPort?.close();
}
