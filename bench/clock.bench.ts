/**
 * engine/clock micro benchmarks: SCDateTime decoding, ISO formatting, time-zone conversion and session
 * checks. Each task converts a whole batch per iteration; figures are values per second computed from
 * the median batch time (robust on a shared machine), each beside the naive way measured in the same run.
 */
import { Bench, type Task } from 'tinybench';
import {
  formatIsoMicros, isInSession, readScDateTimeView, readScDateTimeWords, unixMicrosToScHi, unixMicrosToScLo,
  unixMicrosToWallMicros, wallMicrosToUnixMicros, writeScDateTimeWords,
} from '../engine/clock/index.ts';
import { sig, type BenchResult, type BenchSuite } from './lib.ts';

const SC_VALUES = 1_000_000;
const BATCH = 10_000;
const NY = 'America/New_York';
const OFFSET_BIG = 2_209_161_600_000_000n;

/** Deterministic PRNG (mulberry32) so that every run converts the same values. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

let sink = 0; // results flow here so the loops cannot be optimised away

/** Items per second from a task's median batch latency (tinybench reports ms). */
function perSecond(task: Task | undefined, items: number): number {
  const p50 = task?.result?.latency.p50;
  if (task?.result?.error) throw task.result.error;
  if (p50 === undefined || p50 <= 0) throw new Error(`benchmark task ${task?.name ?? '?'} produced no samples`);
  return items / (p50 / 1000);
}

function entry(name: string, unit: string, value: number, baseline?: string, baselineValue?: number): BenchResult {
  const r: BenchResult = { name, unit, value: sig(value) };
  if (baseline !== undefined && baselineValue !== undefined) {
    r.baseline = baseline;
    r.baselineValue = sig(baselineValue);
    r.ratio = sig(value / baselineValue, 3);
  }
  return r;
}

export const run: BenchSuite = async ({ quick }) => {
  const rnd = prng(0x5c1d);
  // 1e6 SCDateTime fields (8 bytes each, as in a file) for a trading day of 2023 with µs counters.
  const scBuf = new ArrayBuffer(SC_VALUES * 8);
  const scWords = new Uint32Array(scBuf);
  const scView = new DataView(scBuf);
  const dayStart = 1_677_000_000_000_000;
  for (let i = 0; i < SC_VALUES; i++) writeScDateTimeWords(dayStart + Math.floor(rnd() * 86_400e6), scWords, i * 2);
  const outMicros = new Float64Array(SC_VALUES);

  // A batch of instants spread over a DST week (ticks in time order) and their NY wall times.
  const instants = new Float64Array(BATCH);
  const walls = new Float64Array(BATCH);
  const weekStart = 1_741_305_600_000_000; // 2025-03-07T00:00:00Z, DST starts 2025-03-09
  for (let i = 0; i < BATCH; i++) instants[i] = weekStart + Math.floor((i / BATCH) * 7 * 86_400e6) + (i % 1000);
  for (let i = 0; i < BATCH; i++) walls[i] = unixMicrosToWallMicros(instants[i]!, NY);
  const naiveFmt = new Intl.DateTimeFormat('en-US', {
    timeZone: NY, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
  });

  const bench = new Bench({ time: quick ? 150 : 1000, iterations: quick ? 3 : 10, warmupTime: quick ? 50 : 250, warmupIterations: 2 });
  bench
    .add('sc words', () => {
      for (let i = 0; i < SC_VALUES; i++) outMicros[i] = readScDateTimeWords(scWords, i * 2);
      sink += outMicros[SC_VALUES - 1]!;
    })
    .add('sc dataview', () => {
      for (let i = 0; i < SC_VALUES; i++) outMicros[i] = readScDateTimeView(scView, i * 8);
      sink += outMicros[SC_VALUES - 1]!;
    })
    .add('sc bigint', () => {
      for (let i = 0; i < SC_VALUES; i++) outMicros[i] = Number(scView.getBigInt64(i * 8, true) - OFFSET_BIG);
      sink += outMicros[SC_VALUES - 1]!;
    })
    .add('sc encode', () => {
      for (let i = 0; i < SC_VALUES; i++) {
        const us = outMicros[i]!;
        scWords[i * 2] = unixMicrosToScLo(us);
        scWords[i * 2 + 1] = unixMicrosToScHi(us);
      }
      sink += scWords[1]!;
    })
    .add('iso format', () => {
      for (let i = 0; i < BATCH; i++) sink += formatIsoMicros(instants[i]!).length;
    })
    .add('iso date', () => {
      for (let i = 0; i < BATCH; i++) sink += new Date(Math.floor(instants[i]! / 1000)).toISOString().length;
    })
    .add('tz to wall', () => {
      for (let i = 0; i < BATCH; i++) sink += unixMicrosToWallMicros(instants[i]!, NY);
    })
    .add('tz to unix', () => {
      for (let i = 0; i < BATCH; i++) sink += wallMicrosToUnixMicros(walls[i]!, NY, 'compatible');
    })
    .add('tz intl', () => {
      for (let i = 0; i < BATCH; i++) sink += naiveFmt.formatToParts(Math.floor(instants[i]! / 1000)).length;
    })
    .add('session', () => {
      for (let i = 0; i < BATCH; i++) sink += isInSession(instants[i]!, 'cme-globex') ? 1 : 0;
    });
  await bench.run();
  const t = (name: string): Task | undefined => bench.getTask(name);

  // Check the figures measure real work: the decoded values are the ones encoded.
  if (readScDateTimeWords(scWords, 0) !== readScDateTimeView(scView, 0) || !Number.isFinite(sink)) {
    throw new Error('clock bench: inconsistent results');
  }

  const scBig = perSecond(t('sc bigint'), SC_VALUES);
  const naiveTz = perSecond(t('tz intl'), BATCH);
  return [
    entry('clock: SCDateTime -> Unix µs, Uint32Array words (1e6 values)', 'conversions/s', perSecond(t('sc words'), SC_VALUES), 'DataView.getBigInt64 + BigInt subtract', scBig),
    entry('clock: SCDateTime -> Unix µs, DataView (1e6 values)', 'conversions/s', perSecond(t('sc dataview'), SC_VALUES), 'DataView.getBigInt64 + BigInt subtract', scBig),
    entry('clock: Unix µs -> SCDateTime words (1e6 values)', 'conversions/s', perSecond(t('sc encode'), SC_VALUES)),
    entry('clock: formatIsoMicros', 'formats/s', perSecond(t('iso format'), BATCH), 'new Date(ms).toISOString() (ms only)', perSecond(t('iso date'), BATCH)),
    entry('clock: Unix µs -> New York wall µs (cached offsets)', 'conversions/s', perSecond(t('tz to wall'), BATCH), 'Intl.DateTimeFormat#formatToParts per value', naiveTz),
    entry('clock: New York wall µs -> Unix µs', 'conversions/s', perSecond(t('tz to unix'), BATCH), 'Intl.DateTimeFormat#formatToParts per value', naiveTz),
    entry('clock: isInSession cme-globex (time-ordered ticks)', 'checks/s', perSecond(t('session'), BATCH)),
  ];
};
