/**
 * `tickpipe inspect --json` on a 10-million-record `.scid` (quick mode: 1 million), target < 2 s.
 *
 * - in-process: `inspectFile()` (16 MiB reads, streaming accumulation), best of 3 runs after one warm-up
 *   (the file is page-cached by then, as it is for an operator inspecting a file twice), wall time and
 *   the CPU time of that run (on a shared 2-core box the wall time includes waiting for a core);
 * - CLI: one real `node bin/tickpipe.js inspect --json FILE` child process, wall time from spawn to
 *   exit, so it includes Node + tsx start-up (measured alone as `node bin/tickpipe.js --version`);
 * - baseline in the same run: the materialising approach, `readFileSync` + `decodeScidColumns` (one
 *   typed array per field) + a pass over the columns for the same figures; ratio = baseline / streaming
 *   time (> 1: streaming is faster).
 * The file is a deterministic writer-made tick tape in os.tmpdir(), deleted afterwards.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ScidInspection, inspectFile } from '../scripts/commands/inspect.ts';
import { decodeScidColumns } from '../workers/sierra/scid-decoder.ts';
import { ScidSide, ScidSubTrade } from '../workers/sierra/scid-format.ts';
import { ScidWriter } from '../workers/sierra/scid-writer.ts';
import { type BenchResult, type BenchSuite, sig } from './lib.ts';

const BIN = fileURLToPath(new URL('../bin/tickpipe.js', import.meta.url));

/** Random walk on a 0.25 grid, same-ms counters, ~3 % sweeps, cent prices now and then. */
function writeTape(path: string, records: number): void {
  const w = ScidWriter.open(path, { bufferRecords: 65_536 });
  let seed = 2024;
  const rnd = (): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed / 4294967296; };
  let ts = Date.UTC(2025, 10, 11, 14, 30) * 1000;
  let bidTicks = 84_000;
  let i = 0;
  while (i < records) {
    ts = (Math.floor(ts / 1000) + Math.floor(rnd() * 3)) * 1000 + (i % 7);
    const side = rnd() < 0.5 ? ScidSide.BUY : ScidSide.SELL;
    const bid = bidTicks * 0.25, ask = (bidTicks + 1) * 0.25;
    if (rnd() < 0.03 && records - i >= 5) {
      const n = 2 + Math.floor(rnd() * 4);
      for (let k = 0; k < n; k++, i++) {
        const sub = k === 0 ? ScidSubTrade.FIRST : k === n - 1 ? ScidSubTrade.LAST : ScidSubTrade.MIDDLE;
        w.trade(ts + k, side === ScidSide.BUY ? ask + 0.25 * k : bid - 0.25 * k, bid, ask, 1 + Math.floor(rnd() * 9), side, sub, 1);
      }
    } else {
      const px = rnd() < 0.01 ? 21000.07 : side === ScidSide.BUY ? ask : bid;
      w.trade(ts, px, bid, ask, 1 + Math.floor(rnd() * 4), side, ScidSubTrade.NONE, 1);
      i++;
    }
    const r = rnd();
    if (r < 0.05) bidTicks++;
    else if (r < 0.1) bidTicks--;
  }
  w.closeSync();
}

/** Baseline: materialise the columns, then one pass for the same figures (notional naive f64). */
interface ColumnFigures { records: number; volume: number; notional: number; min: number; max: number; atBid: number; atAsk: number }

function inspectByColumns(path: string): ColumnFigures {
  const bytes = new Uint8Array(readFileSync(path));
  const c = decodeScidColumns(bytes, { fileName: path });
  let volume = 0, notional = 0, min = Infinity, max = -Infinity, atBid = 0, atAsk = 0;
  for (let i = 0; i < c.count; i++) {
    const px = c.close[i]!, v = c.totalVolume[i]!;
    volume += v;
    notional += px * v;
    if (px < min) min = px;
    if (px > max) max = px;
    if (c.bidVolume[i] !== 0) atBid++;
    if (c.askVolume[i] !== 0) atAsk++;
  }
  return { records: c.count, volume, notional: Math.round(notional * 100) / 100, min, max, atBid, atAsk };
}

/** Best wall time of `runs` calls, and the CPU time (user + system) of that call, in seconds. */
function best(runs: number, fn: () => void): { s: number; cpuS: number } {
  let b = Infinity;
  let cpu = Infinity;
  for (let i = 0; i < runs; i++) {
    const c0 = process.cpuUsage();
    const t = performance.now();
    fn();
    const dt = performance.now() - t;
    const c = process.cpuUsage(c0);
    if (dt < b) { b = dt; cpu = (c.user + c.system) / 1000; }
  }
  return { s: b / 1000, cpuS: cpu / 1000 };
}

function cliSeconds(args: string[]): { s: number; stdout: string } {
  const t = performance.now();
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });
  const s = (performance.now() - t) / 1000;
  if (r.status !== 0) throw new Error(`tickpipe ${args.join(' ')} failed (${String(r.status)}): ${r.stderr}`);
  return { s, stdout: r.stdout };
}

export const run: BenchSuite = ({ quick }) => Promise.resolve(runSync(quick));

function runSync(quick: boolean): BenchResult[] {
  const records = quick ? 1_000_000 : 10_000_000;
  const label = quick ? '1M' : '10M';
  const dir = mkdtempSync(join(tmpdir(), 'tickpipe-bench-inspect-'));
  const path = join(dir, 'MNQZ25_FUT_CME.scid');
  try {
    writeTape(path, records);
    const fileBytes = statSync(path).size;
    let r: ScidInspection | null = null;
    inspectFile(path); // warm-up: page cache and JIT
    const stream = best(3, () => { r = inspectFile(path) as ScidInspection; });
    const streamS = stream.s;
    if (r === null || (r as ScidInspection).records !== records) throw new Error('inspect returned the wrong record count');
    let base: ColumnFigures = { records: 0, volume: 0, notional: 0, min: 0, max: 0, atBid: 0, atAsk: 0 };
    const colsS = best(quick ? 2 : 1, () => { base = inspectByColumns(path); }).s;
    const ri = r as ScidInspection;
    if (base.records !== records || base.volume !== ri.volume || base.atBid !== ri.atBid || base.atAsk !== ri.atAsk || base.max !== ri.priceMax) {
      throw new Error('baseline disagrees with inspect');
    }
    const startup = cliSeconds(['--version']).s;
    const cli = cliSeconds(['inspect', '--json', path]);
    const cliJson = JSON.parse(cli.stdout) as ScidInspection;
    if (cliJson.records !== records || cliJson.notional !== (r as ScidInspection).notional) throw new Error('CLI output disagrees with the in-process result');
    const results: BenchResult[] = [
      {
        name: `inspect .scid ${label} records, in-process (best of 3)`, unit: 's', value: sig(streamS),
        baseline: 'readFileSync + decodeScidColumns + column pass', baselineValue: sig(colsS), ratio: sig(colsS / streamS, 3),
      },
      { name: `inspect .scid ${label}, in-process CPU time (user+sys, less sensitive to other load)`, unit: 's', value: sig(stream.cpuS) },
      { name: `inspect .scid ${label}, in-process throughput`, unit: 'records/s', value: sig(records / streamS) },
      { name: `inspect .scid ${label}, in-process read rate`, unit: 'MB/s', value: sig(fileBytes / 1e6 / streamS) },
      { name: `tickpipe inspect --json ${label} (child process, wall)`, unit: 's', value: sig(cli.s), baseline: 'tickpipe --version (start-up only)', baselineValue: sig(startup), ratio: sig(cli.s / startup, 3) },
      { name: `tickpipe inspect --json ${label}, CLI throughput incl. start-up`, unit: 'records/s', value: sig(records / cli.s) },
    ];
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
