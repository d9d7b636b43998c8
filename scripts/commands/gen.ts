/**
 * `tickpipe gen`: write a simulated CME market (workers/sim/market-sim.ts) as real Sierra Chart files,
 * `<SYMBOL>_FUT_CME.scid` and `MarketDepthData/<SYMBOL>_FUT_CME.<YYYY-MM-DD>.depth` (one per UTC day),
 * through workers/sim/sim-files.ts (which the engine's demo source and tests use without the CLI).
 *
 * Time window:
 * - `--duration D` (30s, 10m, 1h, 2d, 500ms; a bare number is seconds) and/or `--count N` (total trade
 *   records over all symbols; the run stops at exactly N). With both, whichever comes first. With
 *   neither: 10 minutes (batch mode) or no history (live mode).
 * - `--start T` (ISO 8601 or epoch number): default now minus the duration, or, with `--count` alone,
 *   now minus the time N trades are expected to take at the target rate (so the data ends about now).
 * - `--live`: after the history (if any), keep appending in real time (flushing every 250 ms) until
 *   Ctrl-C / SIGTERM (or until `--count` trades are written); the files are flushed and closed and the
 *   totals printed, exit code 0.
 * Output: a table of the files written (records, first/last record time) and a `total:` line;
 * `--json` prints the stats as one JSON object instead (live-mode notices go to stderr).
 */
import { relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { formatIsoMicros, parseTimeToMicros } from '../../engine/clock/index.ts';
import { engineError } from '../../engine/errors.ts';
import type { SimFilesOptions, SimFilesStats } from '../../workers/sim/sim-files.ts';

const DEFAULT_DURATION_MICROS = 10 * 60 * 1_000_000;
const UNIT_MICROS: Record<string, number> = { us: 1, ms: 1_000, s: 1_000_000, m: 60_000_000, h: 3_600_000_000, d: 86_400_000_000 };

/** `30s`, `10m`, `1h`, `2d`, `500ms`, `1.5h`; a bare number is seconds. Returns µs. */
export function parseDurationMicros(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|m|h|d)?\s*$/.exec(text);
  const us = m ? Math.round(Number(m[1]) * (UNIT_MICROS[m[2] ?? 's'] ?? 1_000_000)) : Number.NaN;
  if (!(us > 0) || !Number.isSafeInteger(us)) {
    throw engineError('ENGINE_ERR_INVALID_ARG', `--duration must look like 30s, 10m, 1h or 2d (a positive amount), got "${text}"`);
  }
  return us;
}

function parsePositiveInt(name: string, text: string, allowZero = false): number {
  const n = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || (!allowZero && n === 0)) {
    throw engineError('ENGINE_ERR_INVALID_ARG', `${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got "${text}"`);
  }
  return n;
}

interface GenCliOptions {
  out?: string;
  dataDir?: string;
  symbols?: string;
  start?: string;
  duration?: string;
  count?: string;
  rate?: string;
  seed?: string;
  depth: boolean;
  live?: boolean;
  json?: boolean;
}

const fmtInt = (n: number): string => n.toLocaleString('en-US');
const fmtTs = (us: number): string => (Number.isNaN(us) ? '-' : formatIsoMicros(us));

/** The readable summary of a run. */
export function formatGenStats(s: SimFilesStats, outDir: string, header: string): string {
  const rows = s.files.map((f) => [relative(outDir, f.path) || f.path, fmtInt(f.records), fmtTs(f.firstTsMicros), fmtTs(f.lastTsMicros)]);
  const head = ['file', 'records', 'first', 'last'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => `  ${r[0]!.padEnd(w[0]!)}  ${r[1]!.padStart(w[1]!)}  ${r[2]!.padEnd(w[2]!)}  ${r[3]!}`;
  return [
    header,
    line(head),
    ...rows.map(line),
    `total: ${fmtInt(s.trades)} trades, ${fmtInt(s.depthRecords)} depth records, ${fmtTs(s.firstTsMicros)} → ${fmtTs(s.lastTsMicros)}`,
    '',
  ].join('\n');
}

function statsJson(s: SimFilesStats, outDir: string, mode: string): Record<string, unknown> {
  return {
    mode, outDir, trades: s.trades, depthRecords: s.depthRecords,
    firstTs: Number.isNaN(s.firstTsMicros) ? null : formatIsoMicros(s.firstTsMicros),
    lastTs: Number.isNaN(s.lastTsMicros) ? null : formatIsoMicros(s.lastTsMicros),
    simStart: formatIsoMicros(s.startMicros), simNow: formatIsoMicros(s.nowMicros),
    rateScale: s.rateScale, expectedTicksPerSecond: Math.round(s.expectedTicksPerSecond),
    files: s.files.map((f) => ({
      path: f.path, kind: f.kind, symbol: f.symbol, records: f.records,
      firstTs: Number.isNaN(f.firstTsMicros) ? null : formatIsoMicros(f.firstTsMicros),
      lastTs: Number.isNaN(f.lastTsMicros) ? null : formatIsoMicros(f.lastTsMicros),
    })),
  };
}

async function gen(o: GenCliOptions): Promise<void> {
  // Loaded on use: the simulator and the writers are not needed by the other commands' start-up.
  const { SimFiles, expectedTicksPerSecond, runLive } = await import('../../workers/sim/sim-files.ts');
  const dataDir = o.dataDir ?? process.env.TICKPIPE_DATA_DIR ?? './data';
  const outDir = resolve(o.out ?? `${dataDir}/sierra`);
  const symbols = o.symbols === undefined ? undefined : o.symbols.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (symbols !== undefined && symbols.length === 0) throw engineError('ENGINE_ERR_INVALID_ARG', '--symbols needs at least one symbol');
  const durationUs = o.duration === undefined ? undefined : parseDurationMicros(o.duration);
  const count = o.count === undefined ? undefined : parsePositiveInt('--count', o.count, true);
  const seed = o.seed === undefined ? 1 : parsePositiveInt('--seed', o.seed, true);
  let rate: number | undefined;
  if (o.rate !== undefined) {
    rate = Number(o.rate);
    if (!(Number.isFinite(rate) && rate > 0)) throw engineError('ENGINE_ERR_INVALID_ARG', `--rate must be a positive number of ticks per second, got "${o.rate}"`);
  }
  const base: Omit<SimFilesOptions, 'startMicros'> = { outDir, seed, depth: o.depth };
  if (symbols !== undefined) base.symbols = symbols;
  if (rate !== undefined) base.ticksPerSecond = rate;
  if (count !== undefined) base.maxTrades = count;
  const tps = expectedTicksPerSecond(base);
  const nowUs = Date.now() * 1000;

  if (!o.live) {
    const span = durationUs ?? (count !== undefined ? Math.ceil((count / tps) * 1e6) : DEFAULT_DURATION_MICROS);
    const startMicros = o.start === undefined ? nowUs - span : parseTimeToMicros(o.start);
    const until = durationUs !== undefined || count === undefined ? startMicros + span : Number.POSITIVE_INFINITY;
    const files = new SimFiles({ ...base, startMicros });
    try {
      files.runUntil(until);
    } finally {
      files.close();
    }
    const s = files.stats;
    process.stdout.write(o.json
      ? `${JSON.stringify(statsJson(s, outDir, 'batch'), null, 2)}\n`
      : formatGenStats(s, outDir, `wrote ${s.files.length} files to ${outDir} (seed ${seed}, target ~${fmtInt(Math.round(tps))} ticks/s)`));
    return;
  }

  const startMicros = o.start === undefined ? nowUs - (durationUs ?? 0) : parseTimeToMicros(o.start);
  const ac = new AbortController();
  const onSignal = (): void => ac.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.stderr.write(`gen: live, writing to ${outDir} at ~${fmtInt(Math.round(tps))} ticks/s (seed ${seed}); Ctrl-C to stop\n`);
  let s: SimFilesStats;
  try {
    s = await runLive({ ...base, startMicros }, ac.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  process.stdout.write(o.json
    ? `${JSON.stringify(statsJson(s, outDir, 'live'), null, 2)}\n`
    : formatGenStats(s, outDir, `live: stopped; wrote ${s.files.length} files to ${outDir} (seed ${seed})`));
}

export function registerGen(program: Command): void {
  program
    .command('gen')
    .description('write a simulated MNQ/NQ/MES market as Sierra Chart files: <SYMBOL>_FUT_CME.scid and MarketDepthData/<SYMBOL>_FUT_CME.<YYYY-MM-DD>.depth (one per UTC day)')
    .option('--out <dir>', 'output directory (default: <data-dir>/sierra)')
    .option('--data-dir <dir>', 'data directory (default: $TICKPIPE_DATA_DIR or ./data)')
    .option('--symbols <list>', 'comma-separated contracts (default: NQZ25,MNQZ25,MESZ25, the simulator\'s)')
    .option('--start <time>', 'simulated start, ISO 8601 or epoch (default: now minus the duration)')
    .option('--duration <d>', 'simulated span: 30s, 10m, 1h, 2d (default 10m; in --live mode: history before going live, default none)')
    .option('--count <n>', 'stop after exactly n trade records in total (all symbols)')
    .option('--rate <n>', 'target trade records per second over all symbols (default: the simulator\'s, ~560)')
    .option('--seed <n>', 'PRNG seed: same seed, start and symbols give the same files', '1')
    .option('--depth', 'write .depth files too (default)')
    .option('--no-depth', 'write only .scid files')
    .option('--live', 'keep appending in real time (flushing every 250 ms) until Ctrl-C / SIGTERM or --count')
    .option('--json', 'print the summary as one JSON object')
    .action(async (opts: GenCliOptions) => {
      await gen(opts);
    });
}
