/**
 * End-to-end bench: `node --import tsx bench/e2e/run.ts [options]` (`npm run bench:e2e`, `tickpipe bench --e2e`).
 *
 * Default: the paced run (10,000 ticks/s for 60 s through the whole engine, with Redis when one answers
 * at 127.0.0.1:6379), then the max run (a 3 M tick backlog, no Redis), then the `ring` and `api` micro
 * suites in quick mode for the same-run comparisons. Prints a table, merges suite "e2e" rows into
 * `<out>/results/latest.json` and writes `<out>/E2E.md` and `<out>/e2e-latency.svg` (out: bench/).
 * Exit code 1 when any stage lost or altered a tick.
 */
import os from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchResult, BenchSuite } from '../lib.ts';
import { runMax, runPaced } from './harness.ts';
import { textReport, writeReport, type Compared, type E2EReport } from './report.ts';

export interface E2EArgs {
  paced: boolean;
  max: boolean;
  compare: boolean;
  rate: number;
  seconds: number;
  warmup: number;
  clients: number;
  wsFormat: 'binary' | 'json' | 'both';
  /** native: bench/native/ws-client.cc processes (default; JS when g++ cannot build it); js: `ws` clients in worker threads */
  wsClients: 'native' | 'js';
  backlog: number;
  ringSlots: number;
  /** paced step ladder: ticks/s per step (5 s each, 2 clients, no Redis) */
  ladder: number[];
  redis: 'auto' | 'off';
  redisDb: number;
  outDir: string;
  help: boolean;
}

export const USAGE = [
  'usage: node --import tsx bench/e2e/run.ts [options]',
  '  --quick            10 s paced run, 500 k tick backlog',
  '  --paced            the paced run only        --max       the max run only',
  '  --rate <n>         paced ticks/s (default 10000)',
  '  --seconds <n>      paced measured window (default 60; quick 10)',
  '  --warmup <n>       paced writing before the measured window, same rate (default 5; quick 2; 0 = none)',
  '  --clients <n>      WebSocket clients (default 10)',
  '  --ws-format <f>    binary | json | both (default both: half the clients binary FlatBuffers, half JSON)',
  '  --ws-clients <k>   native | js (default native: C clients in their own processes, built with g++;',
  '                     js: `ws` clients in worker threads of the bench process, taking its CPU)',
  '  --backlog <n>      max-mode ticks (default 3000000; quick 500000)',
  '  --ring-slots <n>   max-mode TICKPIPE_RING_SLOTS (power of two; default 1048576, the engine default is 65536)',
  '  --ladder a,b,c     after the max run, paced steps at these ticks/s (5 s each, 2 clients, no Redis)',
  '  --no-redis         do not use Redis even when one answers',
  '  --redis-db <n>     Redis db number used and flushed (default 13)',
  '  --no-compare       skip the ring / api micro-suite comparisons',
  '  --out <dir>        where results/latest.json, E2E.md and e2e-latency.svg go (default bench/)',
].join('\n');

const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url));

export function parseE2EArgs(argv: readonly string[]): E2EArgs {
  const a: E2EArgs = { paced: true, max: true, compare: true, rate: 10_000, seconds: 60, warmup: 5, clients: 10, wsFormat: 'both', wsClients: 'native', backlog: 3_000_000, ringSlots: 1 << 20, ladder: [], redis: 'auto', redisDb: 13, outDir: BENCH_DIR, help: false };
  let quick = false;
  let onlyPaced = false;
  let onlyMax = false;
  const set: Partial<Record<'seconds' | 'backlog' | 'warmup', boolean>> = {};
  const num = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < min) throw new Error(`${name} needs a number ≥ ${min}, got ${v ?? 'nothing'}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i]!;
    if (x === '--quick') quick = true;
    else if (x === '--paced') onlyPaced = true;
    else if (x === '--max') onlyMax = true;
    else if (x === '--no-redis') a.redis = 'off';
    else if (x === '--no-compare') a.compare = false;
    else if (x === '--help' || x === '-h') a.help = true;
    else if (x === '--rate') a.rate = num(x, argv[++i], 1);
    else if (x === '--seconds') { a.seconds = num(x, argv[++i], 1); set.seconds = true; }
    else if (x === '--warmup') { a.warmup = num(x, argv[++i], 0); set.warmup = true; }
    else if (x === '--clients') a.clients = Math.floor(num(x, argv[++i], 1));
    else if (x === '--ws-format') {
      const v = argv[++i];
      if (v !== 'binary' && v !== 'json' && v !== 'both') throw new Error(`--ws-format needs binary, json or both, got ${v ?? 'nothing'}`);
      a.wsFormat = v;
    }
    else if (x === '--ws-clients') {
      const v = argv[++i];
      if (v !== 'native' && v !== 'js') throw new Error(`--ws-clients needs native or js, got ${v ?? 'nothing'}`);
      a.wsClients = v;
    }
    else if (x === '--backlog') { a.backlog = Math.floor(num(x, argv[++i], 1)); set.backlog = true; }
    else if (x === '--ladder') {
      const v = argv[++i];
      a.ladder = (v ?? '').split(',').map((t) => num(x, t.trim(), 1));
    } else if (x === '--ring-slots') a.ringSlots = Math.floor(num(x, argv[++i], 64));
    else if (x === '--redis-db') a.redisDb = Math.floor(num(x, argv[++i], 0));
    else if (x === '--out') { const v = argv[++i]; if (!v) throw new Error('--out needs a directory'); a.outDir = v; }
    else throw new Error(`unknown argument ${x}`);
  }
  if (quick && !set.seconds) a.seconds = 10;
  if (quick && !set.warmup) a.warmup = 2;
  if (quick && !set.backlog) a.backlog = 500_000;
  if (onlyPaced && !onlyMax) a.max = false;
  if (onlyMax && !onlyPaced) { a.paced = false; a.compare = false; }
  return a;
}

async function compare(suite: string, log: (m: string) => void): Promise<Compared> {
  log(`compare: running the ${suite} suite (quick) ...`);
  try {
    const mod = (await import(pathToFileURL(`${BENCH_DIR}/${suite}.bench.ts`).href)) as { run: BenchSuite };
    const results: BenchResult[] = await mod.run({ quick: true });
    return { suite, results };
  } catch (e) {
    return { suite, results: [], error: e instanceof Error ? (e.stack ?? e.message) : String(e) };
  }
}

/** Run the bench; returns the report and the files written. */
export async function runE2E(a: E2EArgs, argText: string, log: (m: string) => void = console.log): Promise<{ report: E2EReport; files: string[] }> {
  const loadAtStart = os.loadavg();
  const report: E2EReport = { paced: null, max: null, ladder: [], compared: [], args: argText };
  if (a.paced) report.paced = await runPaced({ rate: a.rate, seconds: a.seconds, warmupSeconds: a.warmup, clients: a.clients, wsFormat: a.wsFormat, wsClients: a.wsClients, redis: a.redis, redisDb: a.redisDb, log });
  if (a.max) report.max = await runMax({ ticks: a.backlog, log, ringSlots: a.ringSlots });
  for (const rate of a.ladder) {
    const r = await runPaced({ rate, seconds: 5, clients: 2, wsFormat: 'binary', redis: 'off', redisDb: a.redisDb, log });
    report.ladder.push({ rate, lost: r.lost, failed: r.stages.filter((x) => !x.ok).length, ws: r.latency.ws, latest: r.latency.latest, behind: r.writer.maxBacklog });
  }
  if (a.compare) for (const s of ['ring', 'api']) report.compared.push(await compare(s, log));
  const files = writeReport(a.outDir, report, loadAtStart);
  return { report, files };
}

async function main(): Promise<number> {
  let a: E2EArgs;
  try {
    a = parseE2EArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`bench:e2e: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (a.help) { console.log(USAGE); return 0; }
  const { report, files } = await runE2E(a, process.argv.slice(2).join(' '));
  console.log('');
  console.log(textReport(report));
  console.log(`\nwrote ${files.join(', ')}`);
  const lost = (report.paced?.stages ?? []).concat(report.max?.stages ?? []).filter((s) => !s.ok);
  if (lost.length > 0) { console.error(`bench:e2e: ${lost.length} stage check(s) FAILED: ${lost.map((s) => s.stage).join(', ')}`); return 1; }
  return report.compared.some((c) => c.error) ? 1 : 0;
}

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const code = await main();
  process.exitCode = code;
  setTimeout(() => { console.error('bench:e2e: a handle is still open after the run; exiting'); process.exit(code); }, 5_000).unref();
}
