/**
 * Redis sink (workers/redis-sink): ticks/s from the sink's ring into a real Redis, in the same run:
 * - the sink as the engine runs it: a worker thread (workers/redis-sink.worker.ts) reading its ring, with
 *   its default batching (pipelines of 1024 records, 4 in flight): XADD ticks:<SYM> (MINID ~ on the first
 *   XADD of each stream per batch) + PUBLISH market_data:sierra:trades per trade, HSET latest:<SYM> per
 *   symbol per batch; the producer (this thread) publishes ready-made 64-byte records into the ring;
 * - the same without PUBLISH (streams and latest hash only);
 * - baselines: the naive client, one awaited XADD + PUBLISH per tick (one round trip per tick), and
 *   ioredis' own pipeline with the same commands (what the sink's hand-encoded RESP batches replace).
 * Figures are for the time until Redis has acknowledged every tick (the status SAB's `sent`). Each sink
 * figure is the median of 3 runs (alternating with and without PUBLISH, a fresh worker and fresh keys each),
 * the slowest run is reported too: the machine is shared, and a run is only ~2 s.
 *
 * Zero loss is checked after every sink run, outside the timed window: the status (sent = published = n,
 * no error, nothing dropped or lost), each stream's XLEN, every entry's ID and fields (XRANGE, compared with
 * the records the producer sent), and latest:<SYM> (the last trade of each symbol). A run that fails a
 * check throws: the suite reports failure instead of a figure.
 *
 * Also reported: redis-server CPU per tick during the XADD + PUBLISH runs (INFO cpu; Redis is single-
 * threaded, so 1 / that is its ceiling for these commands on this machine), and the peak RSS of this
 * process (producer with its 500,000 records + sink worker) during the first sink run.
 *
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
import { setRingState, type SlotViews } from '../engine/ring/ring.ts';
import { spawnWorker, waitForMessage } from '../engine/worker-host.ts';
import { RECORD_SLOT_BYTES, TradeFlag } from '../schemas/records.ts';
import { isWorkerMessage } from '../workers/protocol.ts';
import { idSeqPart } from '../workers/redis-sink/ids.ts';
import { createRedisSinkStatus, readRedisSinkStatus } from '../workers/redis-sink/status.ts';
import { RecordFeeder, deleteKeys, makeRegistry, makeTrades, redisAnswers, waitFor, writeTrades } from '../workers/redis-sink/testing.ts';
import { type BenchResult, type BenchSuite, sig } from './lib.ts';

const SYMBOLS = ['MNQZ25', 'NQZ25', 'MESZ25'];
const SOURCE = 'sierra';

interface SinkRun { rate: number; rssPeakMb: number; redisCpuUsPerTick: number }

async function redisCpuSeconds(r: Redis): Promise<number> {
  const info = await r.info('cpu');
  return Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? NaN) + Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? NaN);
}

function iso(tsMicros: number): string {
  const sec = Math.floor(tsMicros / 1e6);
  return `${new Date(sec * 1000).toISOString().slice(0, 19)}.${String(Math.floor(tsMicros - sec * 1e6)).padStart(6, '0')}Z`;
}

/** The stream fields the sink must have written for the record at slot `i` (workers/redis-sink/sink.ts header). */
function expectedEntry(v: SlotViews, i: number): { id: string; fields: string } {
  const b = i * RECORD_SLOT_BYTES;
  const ts = v.f64[(b + 8) >> 3]!, seq = v.u32[(b + 4) >> 2]!, src = v.u8[b + 1]!, flags = v.u32[(b + 44) >> 2]!;
  const ms = Math.floor(ts / 1000);
  const side = (flags & TradeFlag.SIDE_BUY) !== 0 ? 'B' : (flags & TradeFlag.SIDE_SELL) !== 0 ? 'S' : '';
  return {
    id: `${ms}-${idSeqPart(ts, ms, src, seq)}`,
    fields: ['price', String(v.f64[(b + 16) >> 3]), 'size', String(v.u32[(b + 40) >> 2]), 'bid', String(v.f64[(b + 24) >> 3]), 'ask', String(v.f64[(b + 32) >> 3]),
      'side', side, 'seq', String(seq), 'ts_us', String(ts), 'source', SOURCE].join('\u0000'),
  };
}

/** Every stream holds exactly its symbol's records, in order, with the documented fields; latest:<SYM> is its last trade. */
async function verifyStreams(r: Redis, prefix: string, src: SlotViews, n: number, ids: readonly number[]): Promise<void> {
  for (const [k, sym] of SYMBOLS.entries()) {
    const slots: number[] = [];
    for (let i = 0; i < n; i++) if (src.u16[(i * RECORD_SLOT_BYTES + 2) >> 1] === ids[k]) slots.push(i);
    const key = `${prefix}ticks:${sym}`;
    const len = await r.xlen(key);
    if (len !== slots.length) throw new Error(`redis bench: XLEN ${key} = ${len}, expected ${slots.length}`);
    let at = 0;
    let start = '-';
    for (;;) {
      const chunk = await r.xrange(key, start, '+', 'COUNT', 10_000);
      for (const [id, fields] of chunk) {
        const want = expectedEntry(src, slots[at]!);
        if (id !== want.id || fields.join('\u0000') !== want.fields) {
          throw new Error(`redis bench: ${key} entry #${at} is ${id} ${JSON.stringify(fields)}, expected ${want.id} ${JSON.stringify(want.fields.split('\u0000'))}`);
        }
        at++;
      }
      if (chunk.length < 10_000) break;
      start = `(${chunk[chunk.length - 1]![0]}`;
    }
    if (at !== slots.length) throw new Error(`redis bench: XRANGE ${key} returned ${at} entries, expected ${slots.length}`);
    const last = slots[slots.length - 1]!;
    const b = last * RECORD_SLOT_BYTES;
    const ts = src.f64[(b + 8) >> 3]!;
    const e = expectedEntry(src, last).fields.split('\u0000');
    const want: Record<string, string> = { symbol: sym, ts_ms: String(Math.floor(ts / 1000)), timestamp: iso(ts) };
    for (let f = 0; f < e.length; f += 2) want[e[f]!] = e[f + 1]!;
    const got = await r.hgetall(`${prefix}latest:${sym}`);
    for (const [f, v] of Object.entries(want)) {
      if (got[f] !== v) throw new Error(`redis bench: latest:${sym} ${f} = ${String(got[f])}, expected ${v}`);
    }
  }
}

async function workerRun(url: string, admin: Redis, prefix: string, src: SlotViews, n: number, publish: boolean): Promise<SinkRun> {
  const { registry, ids } = makeRegistry(SYMBOLS);
  const feeder = new RecordFeeder({ slots: 65_536 });
  const status = createRedisSinkStatus();
  const w = spawnWorker(new URL('../workers/redis-sink.worker.ts', import.meta.url), {
    name: 'redis-sink-bench', ring: feeder.ring, registry: registry.buffer, status, redisUrl: url, keyPrefix: prefix, publish,
    sourceNames: { 1: SOURCE },
  }, { name: 'redis-sink-bench' });
  try {
    await waitForMessage(w, (m): m is unknown => isWorkerMessage(m) && m.code === 'READY', 30_000);
    await waitFor(() => readRedisSinkStatus(status).state === 'live', 15_000, 'sink live');
    let rss = process.memoryUsage().rss;
    const cpu0 = await redisCpuSeconds(admin);
    const t0 = performance.now();
    await feeder.pushSlots(src, n, 4096);
    await waitFor(() => { rss = Math.max(rss, process.memoryUsage().rss); return readRedisSinkStatus(status).sent >= n; }, 300_000, 'all ticks acknowledged');
    const secs = (performance.now() - t0) / 1000;
    const cpu1 = await redisCpuSeconds(admin);
    const st = readRedisSinkStatus(status);
    if (st.sent !== n || st.published !== (publish ? n : 0) || st.errors !== 0 || st.dropped !== 0 || st.lost !== 0 || st.skippedDuplicate !== 0) {
      throw new Error(`redis bench: sent ${st.sent}, published ${st.published} of ${n}, errors ${st.errors}, dropped ${st.dropped}, lost ${st.lost}, skipped ${st.skippedDuplicate}: ${st.lastError ?? ''}`);
    }
    const stopped = waitForMessage(w, (m): m is unknown => isWorkerMessage(m) && m.code === 'STOPPED', 15_000);
    setRingState(feeder.ring, RingState.STOPPED);
    await stopped;
    await verifyStreams(admin, prefix, src, n, ids);
    return { rate: n / secs, rssPeakMb: rss / 1048576, redisCpuUsPerTick: ((cpu1 - cpu0) / n) * 1e6 };
  } finally {
    await w.terminate();
    await deleteKeys(admin, prefix);
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

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

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
    const reps = quick ? 1 : 3;
    const naiveN = quick ? 5_000 : 30_000;
    // the records, written once (no object per trade), ending about now: inside the one-hour MINID window
    const src = slotViewsOf(new ArrayBuffer(n * RECORD_SLOT_BYTES));
    writeTrades(src, n, makeRegistry(SYMBOLS).ids, Date.now() + n / 1000, 1, 8);
    const full: SinkRun[] = [], noPub: SinkRun[] = [];
    for (let i = 0; i < reps; i++) {
      full.push(await workerRun(url, admin, `${prefix}a${i}:`, src, n, true));
      noPub.push(await workerRun(url, admin, `${prefix}b${i}:`, src, n, false));
    }
    const naive = await naiveRun(url, prefix, naiveN);
    await deleteKeys(admin, prefix);
    const iop = await ioredisPipelineRun(url, prefix, quick ? 20_000 : 100_000);
    const fullRate = median(full.map((x) => x.rate)), noPubRate = median(noPub.map((x) => x.rate));
    const spread = (xs: SinkRun[]): string => xs.map((x) => `${(x.rate / 1000).toFixed(1)} k (${x.rssPeakMb.toFixed(0)} MB)`).join(", ");
    console.log(`redis sink runs (ticks/s): XADD + PUBLISH ${spread(full)}; no PUBLISH ${spread(noPub)}; every run checked: XLEN, every entry, latest hash, 0 lost`);
    const out: BenchResult[] = [
      {
        name: 'redis sink (worker, pipelined): XADD + PUBLISH per tick, HSET per batch', unit: 'ticks/s', value: sig(fullRate),
        baseline: 'one awaited XADD + PUBLISH per tick', baselineValue: sig(naive), ratio: sig(fullRate / naive, 3),
      },
      {
        name: 'redis sink (worker, pipelined): XADD + PUBLISH per tick vs ioredis pipeline', unit: 'ticks/s', value: sig(fullRate),
        baseline: 'ioredis pipeline of 1024 ticks (XADD + PUBLISH), same thread', baselineValue: sig(iop), ratio: sig(fullRate / iop, 3),
      },
      { name: 'redis sink (worker, pipelined): XADD + PUBLISH per tick, slowest run', unit: 'ticks/s', value: sig(Math.min(...full.map((x) => x.rate))) },
      { name: 'redis sink (worker, pipelined): XADD per tick, HSET per batch, no PUBLISH', unit: 'ticks/s', value: sig(noPubRate) },
      { name: 'redis sink: redis-server CPU per tick (XADD + PUBLISH runs, INFO cpu)', unit: 'µs', value: sig(median(full.map((x) => x.redisCpuUsPerTick)), 3) },
      // the first run's: later runs' RSS also holds the garbage of the verifications before them
      { name: 'redis sink bench: peak RSS of the process (producer + sink worker)', unit: 'MB', value: sig(full[0]!.rssPeakMb) },
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
