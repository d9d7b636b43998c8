/**
 * Output of the end-to-end bench: BenchResult rows (suite "e2e", DESIGN.md §6) merged into
 * `results/latest.json` (other suites' rows kept), a text table for stdout, `E2E.md` (machine header,
 * tables) and `e2e-latency.svg` (latency by percentile, log axis, one line per stage).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { sig, type BenchResult } from '../lib.ts';
import type { MaxResult, PacedResult, StageCheck } from './harness.ts';
import type { LatencySummary } from './stats.ts';

export const SUITE = 'e2e';

export interface Compared { suite: string; results: BenchResult[]; error?: string }

export interface LadderStep { rate: number; lost: number; failed: number; ws: LatencySummary; latest: LatencySummary; behind: number }

export interface E2EReport {
  paced: PacedResult | null;
  max: MaxResult | null;
  ladder: LadderStep[];
  compared: Compared[];
  args: string;
}

const ms = (us: number): number => sig(us / 1000, 3);

function latencyRow(name: string, l: LatencySummary): BenchResult {
  return { name, unit: 'ms (p99)', value: ms(l.p99), p50: ms(l.p50), p99: ms(l.p99), p999: ms(l.p999), max: ms(l.max) };
}

export function resultRows(r: E2EReport): BenchResult[] {
  const out: BenchResult[] = [];
  const p = r.paced;
  if (p) {
    const tag = `${p.rate} ticks/s × ${p.seconds} s${p.warmupSeconds > 0 ? ` after a ${p.warmupSeconds} s warm-up` : ''}`;
    out.push({ name: `e2e paced ${tag}: ticks lost, summed over ${p.stages.length} stage checks`, unit: 'ticks', value: p.lost });
    out.push({ name: `e2e paced ${tag}: stage checks failing (count, Σ ticks×size or seq)`, unit: 'checks', value: p.stages.filter((s) => !s.ok).length });
    out.push(latencyRow(`e2e paced ${tag}: tick → latest table (poller thread)`, p.latency.latest));
    out.push(latencyRow(`e2e paced ${tag}: tick → main-thread record feed (upstream of the WebSocket hub)`, p.latency.feed));
    const wsFirst = p.wsClients.binary > 0 ? `binary FlatBuffers, ${p.wsClients.binary}` : `JSON, ${p.wsClients.json}`;
    out.push(latencyRow(`e2e paced ${tag}: tick → WebSocket client (${wsFirst} clients; target p99 < 5 ms)`, p.latency.ws));
    if (p.latency.wsJson) out.push(latencyRow(`e2e paced ${tag}: tick → WebSocket client (JSON, ${p.wsClients.json} clients, same run; target p99 < 5 ms)`, p.latency.wsJson));
    if (p.latency.redis) out.push(latencyRow(`e2e paced ${tag}: tick → Redis pub/sub subscriber`, p.latency.redis));
    if (p.warmupSeconds > 0) {
      out.push(latencyRow(`e2e paced ${tag}: tick → WebSocket client (${wsFirst} clients), every tick including the warm-up's`, p.latencyAll.ws));
      if (p.latencyAll.wsJson) out.push(latencyRow(`e2e paced ${tag}: tick → WebSocket client (JSON, ${p.wsClients.json} clients), every tick including the warm-up's`, p.latencyAll.wsJson));
    }
  }
  const m = r.max;
  if (m) {
    out.push({ name: `e2e max: backlog of ${m.ticks} ticks (rings ${m.ringSlots} slots), first → last tick in the hot window and fed to the main thread, zero loss (target ≥ 1 M/s)`, unit: 'ticks/s', value: sig(m.ticksPerSecond), baseline: 'incl. engine start', baselineValue: sig(m.ticks / m.secondsFromStart) });
    out.push({ name: `e2e max: backlog of ${m.ticks} ticks (rings ${m.ringSlots} slots), first tick → validator reports all journaled and committed (200 ms stats granularity)`, unit: 'ticks/s', value: sig(m.ticks / m.secondsToJournaled) });
    out.push({ name: `e2e max: ticks lost, summed over ${m.stages.length} stage checks`, unit: 'ticks', value: m.lost });
    out.push({ name: 'e2e max: stage checks failing (count or Σ ticks×size)', unit: 'checks', value: m.stages.filter((s) => !s.ok).length });
    out.push({ name: 'e2e max: peak RSS of the process (engine + workers)', unit: 'MB', value: sig(m.peakRssMb) });
  }
  for (const l of r.ladder) {
    out.push({ ...latencyRow(`e2e ladder ${l.rate} ticks/s × 5 s (2 binary clients, no Redis): tick → WebSocket client; lost ${l.lost}, failed checks ${l.failed}`, l.ws) });
  }
  for (const c of r.compared) for (const x of c.results) out.push({ ...x, name: `e2e compare (${c.suite}, quick, same run): ${x.name}` });
  return out;
}

// ---- text -------------------------------------------------------------------------------------------------

function fmt(x: number | undefined): string {
  if (x === undefined) return '';
  if (Math.abs(x) >= 1e6) return `${sig(x / 1e6, 4)} M`;
  if (Math.abs(x) >= 1e4) return `${sig(x / 1e3, 4)} k`;
  return String(sig(x, 4));
}

function table(head: string[], rows: string[][], md: boolean): string {
  if (md) {
    return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`)].join('\n');
  }
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd();
  return [line(head), w.map((x) => '-'.repeat(x)).join('  '), ...rows.map(line)].join('\n');
}

function stageTable(stages: StageCheck[], md: boolean): string {
  return table(['stage', 'count', 'expected', 'Σ ticks×size', 'expected Σ', 'ok', 'note'],
    stages.map((s) => [s.stage, String(s.count), String(s.expectedCount), s.sum === null ? '—' : String(s.sum), String(s.expectedSum), s.ok ? 'yes' : 'NO', s.note ?? '']), md);
}

function latencyTable(p: PacedResult, md: boolean): string {
  const rows: string[][] = [];
  const add = (n: string, l: LatencySummary | null): void => {
    if (l) rows.push([n, String(l.count), ...[l.p50, l.p99, l.p999, l.max].map((x) => (x / 1000).toFixed(3))]);
  };
  add('tick → latest table', p.latency.latest);
  add('tick → main-thread feed (before the hub)', p.latency.feed);
  add(p.wsClients.binary > 0 ? `tick → WebSocket client (binary, ${p.wsClients.binary})` : `tick → WebSocket client (JSON, ${p.wsClients.json})`, p.latency.ws);
  if (p.latency.wsJson) add(`tick → WebSocket client (JSON, ${p.wsClients.json})`, p.latency.wsJson);
  add('tick → Redis pub/sub', p.latency.redis);
  if (p.warmupSeconds > 0) {
    add(`incl. warm-up: tick → main-thread feed`, p.latencyAll.feed);
    add(`incl. warm-up: tick → WebSocket client (${p.wsClients.binary > 0 ? 'binary' : 'JSON'})`, p.latencyAll.ws);
    if (p.latencyAll.wsJson) add('incl. warm-up: tick → WebSocket client (JSON)', p.latencyAll.wsJson);
  }
  return table(['latency (ms)', 'samples', 'p50', 'p99', 'p99.9', 'max'], rows, md);
}

function ladderTable(r: E2EReport, md: boolean): string {
  return table(['ticks/s', 'lost', 'failed checks', 'writer max behind', 'WS p50 ms', 'WS p99 ms', 'WS max ms', 'latest p99 ms'],
    r.ladder.map((l) => [String(l.rate), String(l.lost), String(l.failed), String(l.behind), ...[l.ws.p50, l.ws.p99, l.ws.max, l.latest.p99].map((x) => (x / 1000).toFixed(2))]), md);
}

function rowsTable(rows: BenchResult[], md: boolean): string {
  return table(['name', 'value', 'unit', 'baseline', 'baseline value', 'p50', 'p99', 'p99.9', 'max'],
    rows.map((r) => [r.name, fmt(r.value), r.unit, r.baseline ?? '', fmt(r.baselineValue), fmt(r.p50), fmt(r.p99), fmt(r.p999), fmt(r.max)]), md);
}

function threadLine(p: PacedResult): string {
  const m = p.mainThread;
  const obs = Object.entries(p.observerUtilization).map(([k, v]) => `${k} ${(v * 100).toFixed(0)}%`).join(', ');
  return `Engine main thread (uWS, feed, hub) in the measured window: event loop ${(m.utilization * 100).toFixed(0)}% busy, loop delay p50 ${m.delayP50.toFixed(2)} ms / p99 ${m.delayP99.toFixed(2)} ms / max ${m.delayMax.toFixed(1)} ms. Observer threads busy: ${obs}. CPU of the whole process (engine, its workers, the bench's writer and observers) in the measured window: ${m.processCpuCores.toFixed(2)} cores.`;
}

export function textReport(r: E2EReport): string {
  const out: string[] = [];
  if (r.paced) out.push(`PACED: ${r.paced.written} ticks at ${r.paced.rate}/s`, stageTable(r.paced.stages, false), '', latencyTable(r.paced, false), threadLine(r.paced), '');
  if (r.max) out.push(`MAX: ${r.max.ticks} ticks: ${fmt(r.max.ticksPerSecond)} ticks/s (${r.max.secondsIngest.toFixed(2)} s ingest, ${r.max.secondsFromStart.toFixed(2)} s from engine start), peak RSS ${r.max.peakRssMb.toFixed(0)} MB`, stageTable(r.max.stages, false), '');
  if (r.ladder.length) out.push('LADDER', ladderTable(r, false), '');
  for (const c of r.compared) if (c.error) out.push(`compare ${c.suite} FAILED: ${c.error.split('\n')[0]}`);
  out.push(rowsTable(resultRows(r), false));
  return out.join('\n');
}

// ---- files ------------------------------------------------------------------------------------------------

function machine(): string {
  const cpus = os.cpus();
  return `${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${cpus.length} logical cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.type()} ${os.release()} ${os.arch()}`;
}

export function markdown(r: E2EReport, loadAtStart: number[]): string {
  const out: string[] = [
    '# tickpipe end-to-end benchmark', '',
    '_Generated by `bench/e2e/run.ts` (`npm run bench:e2e`); do not edit by hand._', '',
    `- **Machine:** ${machine()}`,
    `- **Node:** ${process.version}`,
    `- **Date:** ${new Date().toISOString()}`,
    `- **Arguments:** \`${r.args || '(defaults)'}\``,
    `- **Load average (1/5/15 min) at start:** ${loadAtStart.map((x) => x.toFixed(2)).join(' / ')}; **at the end:** ${os.loadavg().map((x) => x.toFixed(2)).join(' / ')}`,
    '',
    'Path: `.scid` files (ScidWriter in a writer thread, flushed every ~1 ms) → Sierra source worker (adaptive poll: every 1 ms while data arrives, the engine default) → SPSC ring → validator worker (journal group commit, hot window, latest table; the journal is compacted to Parquet after the run and read back with DuckDB) → feed ring → main thread → WebSocket hub → WebSocket clients (binary FlatBuffers and JSON; by default native clients, bench/native/ws-client.cc, one process per format with all its connections on one epoll thread, as a latency-sensitive bot runs in its own process; with `--ws-clients js`, `ws` clients in one worker thread per format of the bench process), and → Redis sink worker → Redis when one answers. Latency = arrival time − the tick\'s own timestamp (wall clock when written). Every stage\'s count and Σ (price in ticks × size, exact integers) is compared with what was written.',
    '',
  ];
  if (r.paced) {
    const p = r.paced;
    out.push(`## Paced: ${p.rate} ticks/s for ${p.seconds} s${p.warmupSeconds > 0 ? ` after a ${p.warmupSeconds} s warm-up` : ''} (${p.written} ticks in all, 3 symbols)`, '',
      ...(p.warmupSeconds > 0 ? [`The writer runs at the same rate for ${p.warmupSeconds} s before the measured window: a freshly started process spends its first second compiling the hot paths of a dozen isolates (the engine's main thread was measured waiting 20-70 ms for a CPU then). Every tick, the warm-up's included, is counted and checked at every stage below; the latency percentiles are of the ticks written in the measured window, and the "incl. warm-up" rows give them over every tick. Those include the very first ticks, which wait for the source's backed-off poll (the engine idled while the clients connected: up to TICKPIPE_POLL_MS, 250 ms by default, after which it polls every TICKPIPE_POLL_MIN_MS while data arrives).`, ''] : []),
      ...(p.wsClients.note ? [`**${p.wsClients.note}.**`, ''] : []),
      `WebSocket clients: ${p.wsClients.binary} binary + ${p.wsClients.json} JSON, ${p.wsClients.kind === 'native' ? 'native (separate processes)' : '`ws` in worker threads of the bench process'}. Writer: ${p.writer.seconds.toFixed(1)} s, ${p.writer.flushes} flushes, at most ${p.writer.maxBacklog} ticks behind schedule. Redis: ${p.redis ? 'yes (dedicated db, flushed first)' : 'not available, skipped'}. **Ticks lost: ${p.lost}.**`, '',
      stageTable(p.stages, true), '', latencyTable(p, true), '', threadLine(p), '', '![latency by percentile](e2e-latency.svg)', '');
    if (p.errors.length) out.push('Warnings during the run:', '', ...p.errors.slice(0, 10).map((e) => `- ${e.replace(/\n/g, ' ')}`), '');
  }
  if (r.max) {
    const m = r.max;
    out.push(`## Max: a backlog of ${m.ticks} ticks, no Redis, rings of ${m.ringSlots} slots`, '',
      `**${fmt(m.ticksPerSecond)} ticks/s** from the first tick in the hot window to the last one in the hot window and delivered to the main thread's feed (${m.secondsIngest.toFixed(2)} s, live shared-memory counters polled every ~1 ms); the validator reported all ${m.ticks} journaled and committed ${m.secondsToJournaled.toFixed(2)} s after the first tick (its counters refresh every 200 ms: ${fmt(m.ticks / m.secondsToJournaled)} ticks/s by that measure); ${fmt(m.ticks / m.secondsFromStart)} ticks/s including engine start (${m.secondsFromStart.toFixed(2)} s). Peak RSS ${m.peakRssMb.toFixed(0)} MB. **Ticks lost: ${m.lost}.**`, '',
      stageTable(m.stages, true), '');
  }
  if (r.ladder.length) out.push('## Paced step ladder (5 s per step, 2 WebSocket clients, no Redis)', '', ladderTable(r, true), '');
  out.push('## All figures (suite `e2e` in bench/results/latest.json)', '', rowsTable(resultRows(r), true), '');
  for (const c of r.compared) if (c.error) out.push(`Comparison suite ${c.suite} failed: ${c.error.split('\n')[0]}`, '');
  return out.join('\n');
}

const COLORS = ['#2f7ed8', '#e4572e', '#17a589', '#8e44ad'];

/** Latency (ms, log scale) against percentile (log scale of 1/(1 − p): 50, 90, 99, 99.9, 99.99). */
export function latencySvg(lines: Array<{ name: string; l: LatencySummary }>): string {
  const W = 760, H = 420, L = 70, R = 220, T = 40, B = 50;
  const xOf = (p: number): number => {
    const x = Math.log10(1 / (1 - p / 100));
    const x0 = Math.log10(2), x1 = Math.log10(10_000);
    return L + ((x - x0) / (x1 - x0)) * (W - L - R);
  };
  // latency on a log axis too: p50 (≈ 1 ms) and the tail (hundreds of ms) both stay readable
  const vals = lines.flatMap((s) => s.l.curve.map(([, v]) => Math.max(1, v) / 1000));
  const lo = 10 ** Math.floor(Math.log10(Math.min(...vals, 1)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...vals, lo * 10)));
  const yOf = (v: number): number => T + (1 - (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (H - T - B);
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${L}" y="22" font-size="14" font-weight="bold">tickpipe end-to-end latency by percentile</text>`,
  ];
  for (const p of [50, 90, 99, 99.9, 99.99]) {
    const x = xOf(p).toFixed(1);
    parts.push(`<line x1="${x}" y1="${T}" x2="${x}" y2="${H - B}" stroke="#ddd"/>`, `<text x="${x}" y="${H - B + 16}" text-anchor="middle">${p}</text>`);
  }
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    for (const m of [1, 2, 5]) {
      const v = d * m;
      if (v > hi * 1.0001) break;
      const y = yOf(v).toFixed(1);
      parts.push(`<line x1="${L}" y1="${y}" x2="${W - R}" y2="${y}" stroke="${m === 1 ? '#ddd' : '#f2f2f2'}"/>`, `<text x="${L - 6}" y="${y}" text-anchor="end" dy="4">${sig(v, 3)}</text>`);
    }
  }
  parts.push(`<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#333"/>`, `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#333"/>`);
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">percentile (log scale)</text>`);
  parts.push(`<text transform="translate(18 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">latency (ms, log scale)</text>`);
  lines.forEach((s, i) => {
    const c = COLORS[i % COLORS.length]!;
    const pts = s.l.curve.filter(([p]) => p <= 99.99).map(([p, v]) => `${xOf(p).toFixed(1)},${yOf(v / 1000).toFixed(1)}`).join(' ');
    parts.push(`<polyline points="${pts}" fill="none" stroke="${c}" stroke-width="2"/>`);
    for (const pt of pts.split(' ')) { const [x, y] = pt.split(','); parts.push(`<circle cx="${x}" cy="${y}" r="2.5" fill="${c}"/>`); }
    const ly = T + 10 + i * 20;
    parts.push(`<line x1="${W - R + 14}" y1="${ly}" x2="${W - R + 34}" y2="${ly}" stroke="${c}" stroke-width="2"/>`, `<text x="${W - R + 40}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}


function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/** Replace the e2e rows of `<outDir>/results/latest.json`, keeping every other suite's rows. */
export function mergeLatestJson(outDir: string, rows: BenchResult[]): string {
  const dir = join(outDir, 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'latest.json');
  let prev: Array<BenchResult & { suite?: string }> = [];
  try {
    const x: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (Array.isArray(x)) prev = x as typeof prev;
  } catch { /* none yet */ }
  const all = [...prev.filter((r) => r.suite !== SUITE), ...rows.map((r) => ({ suite: SUITE, ...r }))];
  writeAtomic(file, JSON.stringify(all, null, 2) + '\n');
  return file;
}

export function writeReport(outDir: string, r: E2EReport, loadAtStart: number[]): string[] {
  mkdirSync(outDir, { recursive: true });
  const files = [mergeLatestJson(outDir, resultRows(r))];
  const md = join(outDir, 'E2E.md');
  writeAtomic(md, markdown(r, loadAtStart));
  files.push(md);
  if (r.paced) {
    const svg = join(outDir, 'e2e-latency.svg');
    const lines = [{ name: 'tick → latest table', l: r.paced.latency.latest }, { name: 'tick → main-thread feed', l: r.paced.latency.feed }, { name: r.paced.wsClients.binary > 0 ? 'tick → WebSocket (binary)' : 'tick → WebSocket (JSON)', l: r.paced.latency.ws }];
    if (r.paced.latency.wsJson) lines.push({ name: 'tick → WebSocket (JSON)', l: r.paced.latency.wsJson });
    if (r.paced.latency.redis) lines.push({ name: 'tick → Redis pub/sub', l: r.paced.latency.redis });
    writeAtomic(svg, latencySvg(lines));
    files.push(svg);
  }
  return files;
}

