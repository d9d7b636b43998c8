/**
 * Redis sink (workers/redis-sink): ticks/s from the sink's ring into a real Redis, in the same run:
 * - the sink as the engine runs it: a worker thread (workers/redis-sink.worker.ts) reading its ring,
 *   one pipeline per 1024 records, 2 in flight: XADD ticks:<SYM> MINID ~ … + PUBLISH per trade, HSET
 *   latest:<SYM> per symbol per batch; the producer (this thread) publishes ready-made 64-byte records;
 * - the same without PUBLISH (streams and latest hash only);
 * - baselines: the naive client, one awaited XADD + PUBLISH per tick (one round trip per tick), and
 *   ioredis' own pipeline with the same commands (what the sink's hand-encoded RESP batches replace).
 * Figures are for the time until Redis has acknowledged every tick (the status SAB's `sent`).
 * Uses REDIS_URL or redis://127.0.0.1:6379/9 with a unique key prefix (deleted afterwards); when no
 * Redis answers the suite prints a note and reports nothing.
 *
 * Run alone (prints the rows, writes no results file):
 * `flock /tmp/tickpipe-bench.lock node --import tsx bench/redis.bench.ts [--quick]`.
 */
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { slotViewsOf } from '../engine/journal/format.ts';
import { RingState } from '../engine/ring/layout.ts';
import { setRingState } from '../engine/ring/ring.ts';
import { spawnWorker, waitForMessage } from '../engine/worker-host.ts';
import { RECORD_SLOT_BYTES } from '../schemas/records.ts';
import { isWorkerMessage } from '../workers/protocol.ts';
import { createRedisSinkStatus, readRedisSinkStatus } from '../workers/redis-sink/status.ts';
import { RecordFeeder, deleteKeys, makeRegistry, makeTrades, redisAnswers, waitFor, writeTestRecord } from '../workers/redis-sink/testing.ts';
import { type BenchResult, type BenchSuite, sig } from './lib.ts';

const SYMBOLS = ['MNQZ25', 'NQZ25', 'MESZ25'];

async function workerRun(url: string, prefix: string, n: number, publish: boolean): Promise<{ rate: number; rssMb: number }> {
  const { registry, ids } = makeRegistry(SYMBOLS);
  const trades = makeTrades(n, ids, Date.now() + n / 1000, 1, 8);
  const src = slotViewsOf(new ArrayBuffer(n * RECORD_SLOT_BYTES));
  for (let i = 0; i < n; i++) writeTestRecord(src, i * RECORD_SLOT_BYTES, trades[i]!);
  const feeder = new RecordFeeder({ slots: 65_536 });
  const status = createRedisSinkStatus();
  const w = spawnWorker(new URL('../workers/redis-sink.worker.ts', import.meta.url), {
    name: 'redis-sink-bench', ring: feeder.ring, registry: registry.buffer, status, redisUrl: url, keyPrefix: prefix, publish,
  }, { name: 'redis-sink-bench' });
  try {
    await waitForMessage(w, (m): m is unknown => isWorkerMessage(m) && m.code === 'READY', 30_000);
    await waitFor(() => readRedisSinkStatus(status).state === 'live', 15_000, 'sink live');
    let rss = process.memoryUsage().rss;
    const t0 = performance.now();
    await feeder.pushSlots(src, n, 4096);
    await waitFor(() => { rss = Math.max(rss, process.memoryUsage().rss); return readRedisSinkStatus(status).sent >= n; }, 300_000, 'all ticks acknowledged');
    const secs = (performance.now() - t0) / 1000;
    const st = readRedisSinkStatus(status);
    if (st.sent !== n || st.errors !== 0) throw new Error(`sink bench: sent ${st.sent} of ${n}, errors ${st.errors}: ${st.lastError ?? ''}`);
    const stopped = waitForMessage(w, (m): m is unknown => isWorkerMessage(m) && m.code === 'STOPPED', 15_000);
    setRingState(feeder.ring, RingState.STOPPED);
    await stopped;
    return { rate: n / secs, rssMb: rss / 1048576 };
  } finally {
    await w.terminate();
  }
}

/** The same commands through ioredis' own pipeline (1024 ticks per exec, awaited): what the sink's hand-encoded batches replace. */
async function ioredisPipelineRun(url: string, prefix: string, n: number): Promise<number> {
  const { ids } = makeRegistry(SYMBOLS);
  const trades = makeTrades(n, ids, Date.now() + n / 1000, 1, 8);
  const r = new Redis(url);
  try {
    const minId = String(Date.now() - 3_600_000);
    const t0 = performance.now();
    for (let i = 0; i < n; i += 1024) {
      const p = r.pipeline();
      for (let j = i; j < Math.min(n, i + 1024); j++) {
        const t = trades[j]!;
        const sym = SYMBOLS[ids.indexOf(t.symbolId)]!;
        const ms = Math.floor(t.tsMicros / 1000);
        p.xadd(`${prefix}iop:ticks:${sym}`, 'MINID', '~', minId, `${ms}-${t.seq}`, 'price', t.price, 'size', t.size, 'bid', t.price - 0.25, 'ask', t.price + 0.25, 'side', 'B', 'seq', t.seq, 'ts_us', t.tsMicros, 'source', 'sierra');
        p.publish(`${prefix}iop:market_data:sierra:trades`, `{"symbol":"${sym}","price":${t.price},"size":${t.size},"timestamp":"${new Date(ms).toISOString()}","ts_ms":${ms}}`);
      }
      await p.exec();
    }
    return n / ((performance.now() - t0) / 1000);
  } finally {
    r.disconnect();
  }
}

async function naiveRun(url: string, prefix: string, n: number): Promise<number> {
  const { ids } = makeRegistry(SYMBOLS);
  const trades = makeTrades(n, ids, Date.now() + n / 1000, 1, 8);
  const r = new Redis(url);
  try {
    const minId = String(Date.now() - 3_600_000);
    const t0 = performance.now();
    for (const t of trades) {
      const sym = SYMBOLS[ids.indexOf(t.symbolId)]!;
      const ms = Math.floor(t.tsMicros / 1000);
      await r.xadd(`${prefix}naive:ticks:${sym}`, 'MINID', '~', minId, `${ms}-${t.seq}`, 'price', t.price, 'size', t.size, 'bid', t.price - 0.25, 'ask', t.price + 0.25, 'side', 'B', 'seq', t.seq, 'ts_us', t.tsMicros, 'source', 'sierra');
      await r.publish(`${prefix}naive:market_data:sierra:trades`, JSON.stringify({ symbol: sym, price: t.price, size: t.size, timestamp: new Date(ms).toISOString(), ts_ms: ms }));
    }
    return n / ((performance.now() - t0) / 1000);
  } finally {
    r.disconnect();
  }
}

export const run: BenchSuite = async ({ quick }) => {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/9';
  if (!(await redisAnswers(url))) {
    console.log(`redis bench skipped: no Redis answers at ${url.replace(/\/\/[^@/]*@/, '//***@')} (set REDIS_URL or start redis-server)`);
    return [];
  }
  const prefix = `tp-bench-${process.pid}-${Date.now()}:`;
  const admin = new Redis(url);
  try {
    const n = quick ? 50_000 : 500_000;
    const naiveN = quick ? 5_000 : 30_000;
    const full = await workerRun(url, `${prefix}a:`, n, true);
    await deleteKeys(admin, prefix);
    const noPub = await workerRun(url, `${prefix}b:`, n, false);
    await deleteKeys(admin, prefix);
    const naive = await naiveRun(url, prefix, naiveN);
    await deleteKeys(admin, prefix);
    const iop = await ioredisPipelineRun(url, prefix, quick ? 20_000 : 100_000);
    const out: BenchResult[] = [
      {
        name: 'redis sink (worker, pipelined): XADD + PUBLISH per tick, HSET per batch', unit: 'ticks/s', value: sig(full.rate),
        baseline: 'one awaited XADD + PUBLISH per tick', baselineValue: sig(naive), ratio: sig(full.rate / naive, 3),
      },
      {
        name: 'redis sink (worker, pipelined): XADD + PUBLISH per tick vs ioredis pipeline', unit: 'ticks/s', value: sig(full.rate),
        baseline: 'ioredis pipeline of 1024 ticks (XADD + PUBLISH), same thread', baselineValue: sig(iop), ratio: sig(full.rate / iop, 3),
      },
      { name: 'redis sink (worker, pipelined): XADD per tick, HSET per batch, no PUBLISH', unit: 'ticks/s', value: sig(noPub.rate) },
      { name: 'redis sink bench: peak RSS of the process (producer + sink worker)', unit: 'MB', value: sig(Math.max(full.rssMb, noPub.rssMb)) },
    ];
    return out;
  } finally {
    await deleteKeys(admin, prefix);
    admin.disconnect();
  }
};

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const results = await run({ quick: process.argv.includes('--quick') });
  console.table(results);
}
