/**
 * Benchmark runner: `node --import tsx bench/run.ts [--quick] [--only ring,latest]` (npm run bench).
 *
 * Discovers `bench/<suite>.bench.ts`, runs each suite's `run({ quick })` one after the other (never in
 * parallel: they measure threads and cores), prints one table, and writes
 * - `bench/results/latest.json`: an array of BenchResult (DESIGN.md §6), each entry also tagged with the
 *   `suite` it came from. With `--only`, entries of suites not run this time are kept from the previous
 *   file, so a partial run does not erase the others' figures.
 * - `bench/RESULTS.md`: the same figures as a markdown table, under a header naming the machine (CPU
 *   model, cores, memory, OS), the Node version, the date and the mode.
 * A suite that throws, times out or returns malformed results is reported as failed; the others still
 * run, and the process exits non-zero at the end.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchResult, BenchSuite } from './lib.ts';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const RESULTS_DIR = path.join(BENCH_DIR, 'results');
const LATEST_JSON = path.join(RESULTS_DIR, 'latest.json');
const RESULTS_MD = path.join(BENCH_DIR, 'RESULTS.md');
const SUITE_SUFFIX = '.bench.ts';
/** A suite that runs longer than this is reported as failed (its threads may still be running). */
const SUITE_TIMEOUT_MS = Number(process.env.TICKPIPE_BENCH_SUITE_TIMEOUT_MS ?? 15 * 60_000);

interface Args { quick: boolean; only: string[] | null; help: boolean }
interface TaggedResult extends BenchResult { suite: string }
interface SuiteOutcome { suite: string; ok: boolean; ms: number; error?: string; results: TaggedResult[] }

function usage(): string {
  return [
    'usage: node --import tsx bench/run.ts [--quick] [--only <suite>[,<suite>...]]',
    '  --quick          short runs (CI smoke; figures are not meaningful)',
    '  --only a,b       run only these suites (names of bench/<name>.bench.ts)',
    `suites: ${discover().join(', ') || '(none found)'}`,
  ].join('\n');
}

function parseArgs(argv: readonly string[]): Args {
  const a: Args = { quick: false, only: null, help: false };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i]!;
    if (x === '--quick') a.quick = true;
    else if (x === '--help' || x === '-h') a.help = true;
    else if (x === '--only' || x.startsWith('--only=')) {
      const v = x === '--only' ? argv[++i] : x.slice('--only='.length);
      if (!v) throw new Error('--only needs a comma-separated list of suite names');
      a.only = [...(a.only ?? []), ...v.split(',').map((s) => s.trim()).filter(Boolean)];
    } else throw new Error(`unknown argument ${x}`);
  }
  return a;
}

function discover(): string[] {
  return readdirSync(BENCH_DIR).filter((f) => f.endsWith(SUITE_SUFFIX)).map((f) => f.slice(0, -SUITE_SUFFIX.length)).sort();
}

function isResult(x: unknown): x is BenchResult {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as Record<string, unknown>;
  if (typeof r.name !== 'string' || typeof r.unit !== 'string' || typeof r.value !== 'number' || Number.isNaN(r.value)) return false;
  for (const k of ['baselineValue', 'ratio', 'p50', 'p99', 'p999', 'max']) if (r[k] !== undefined && typeof r[k] !== 'number') return false;
  return r.baseline === undefined || typeof r.baseline === 'string';
}

async function runSuite(suite: string, quick: boolean): Promise<SuiteOutcome> {
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const mod = (await import(pathToFileURL(path.join(BENCH_DIR, suite + SUITE_SUFFIX)).href)) as { run?: unknown };
    if (typeof mod.run !== 'function') throw new Error(`bench/${suite}${SUITE_SUFFIX} does not export \`run: BenchSuite\``);
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${SUITE_TIMEOUT_MS} ms`)), SUITE_TIMEOUT_MS);
    });
    const out: unknown = await Promise.race([(mod.run as BenchSuite)({ quick }), timeout]);
    if (!Array.isArray(out)) throw new Error('run() did not return an array of results');
    const bad = out.findIndex((r) => !isResult(r));
    if (bad >= 0) throw new Error(`result #${bad} is not a BenchResult: ${JSON.stringify(out[bad])}`);
    if (out.length === 0) throw new Error('run() returned no results');
    return { suite, ok: true, ms: performance.now() - t0, results: (out as BenchResult[]).map((r) => ({ suite, ...r })) };
  } catch (e) {
    const error = e instanceof Error ? (e.stack ?? e.message) : String(e);
    return { suite, ok: false, ms: performance.now() - t0, error, results: [] };
  } finally {
    clearTimeout(timer);
  }
}

// ---- formatting -----------------------------------------------------------------------------------------

function fmtNum(x: number | undefined): string {
  if (x === undefined) return '';
  if (!Number.isFinite(x)) return String(x);
  const abs = Math.abs(x);
  if (abs >= 1e9) return `${(x / 1e9).toPrecision(4)} G`;
  if (abs >= 1e6) return `${(x / 1e6).toPrecision(4)} M`;
  if (abs >= 1e4) return `${(x / 1e3).toPrecision(4)} k`;
  if (abs === 0 || abs >= 1) return String(Number(x.toPrecision(4)));
  return x.toPrecision(3);
}

const fmtRatio = (x: number | undefined): string => (x === undefined ? '' : `${Number(x.toPrecision(3))}×`);

const COLUMNS = ['suite', 'name', 'value', 'unit', 'baseline', 'baseline value', 'ratio', 'p50', 'p99'] as const;

function rowOf(r: TaggedResult): string[] {
  return [r.suite, r.name, fmtNum(r.value), r.unit, r.baseline ?? '', fmtNum(r.baselineValue), fmtRatio(r.ratio), fmtNum(r.p50), fmtNum(r.p99)];
}

function textTable(rows: string[][]): string {
  const head = [...COLUMNS];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const numeric = new Set([2, 5, 6, 7, 8]);
  const line = (cells: readonly string[]): string => cells.map((c, i) => (numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function mdEscape(s: string): string {
  return s.replace(/\|/g, '\\|');
}

function machine(): Record<string, string> {
  const cpus = os.cpus();
  return {
    CPU: `${cpus[0]?.model.trim() ?? 'unknown'} (${cpus.length} logical cores)`,
    Memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    OS: `${os.type()} ${os.release()} ${os.arch()}`,
    Node: process.version,
  };
}

function markdown(all: TaggedResult[], outcomes: SuiteOutcome[], args: Args, date: string): string {
  const m = machine();
  const out: string[] = [
    '# tickpipe benchmark results',
    '',
    '_Generated by `bench/run.ts` (`npm run bench`); do not edit by hand._',
    '',
    `- **Machine:** ${m.CPU}, ${m.Memory} RAM, ${m.OS}`,
    `- **Node:** ${m.Node}`,
    `- **Date:** ${date}`,
    `- **Mode:** ${args.quick ? 'quick (smoke run: figures are not meaningful)' : 'full'}${args.only ? `; this run: ${args.only.join(', ')} (other suites' rows are from earlier runs)` : ''}`,
    `- **Load average at the end (1/5/15 min):** ${os.loadavg().map((x) => x.toFixed(2)).join(' / ')} — well above the core count means other work shared the CPUs and the figures are noisy`,
    '',
    `| ${COLUMNS.join(' | ')} |`,
    `|${COLUMNS.map((_, i) => ([2, 5, 6, 7, 8].includes(i) ? '---:' : '---')).join('|')}|`,
    ...all.map((r) => `| ${rowOf(r).map(mdEscape).join(' | ')} |`),
  ];
  const failed = outcomes.filter((o) => !o.ok);
  if (failed.length > 0) {
    out.push('', '## Failed suites', '');
    for (const f of failed) out.push(`- **${f.suite}**: ${mdEscape((f.error ?? '').split('\n')[0] ?? '')}`);
  }
  return out.join('\n') + '\n';
}

function previousResults(): TaggedResult[] {
  try {
    const prev: unknown = JSON.parse(readFileSync(LATEST_JSON, 'utf8'));
    if (!Array.isArray(prev)) return [];
    return prev.filter((r): r is TaggedResult => isResult(r) && typeof (r as { suite?: unknown }).suite === 'string');
  } catch {
    return [];
  }
}

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

// ---- main -------------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`bench: ${(e as Error).message}\n${usage()}`);
    return 2;
  }
  if (args.help) { console.log(usage()); return 0; }
  const available = discover();
  const unknown = (args.only ?? []).filter((s) => !available.includes(s));
  if (unknown.length > 0) {
    console.error(`bench: unknown suite(s) ${unknown.join(', ')}; available: ${available.join(', ')}`);
    return 2;
  }
  const suites = args.only ? available.filter((s) => args.only!.includes(s)) : available;
  if (suites.length === 0) { console.error('bench: no suites found in bench/'); return 2; }

  console.log(`bench: ${suites.join(', ')}${args.quick ? ' (quick)' : ''} on ${machine().CPU}, Node ${process.version}`);
  const outcomes: SuiteOutcome[] = [];
  for (const suite of suites) {
    console.log(`bench: running ${suite} ...`);
    const o = await runSuite(suite, args.quick);
    outcomes.push(o);
    if (o.ok) console.log(`bench: ${suite} done in ${(o.ms / 1000).toFixed(1)} s (${o.results.length} figures)`);
    else console.error(`bench: ${suite} FAILED after ${(o.ms / 1000).toFixed(1)} s:\n${o.error}`);
  }

  const fresh = outcomes.flatMap((o) => o.results);
  const ran = new Set(suites);
  // rows of suites not run now stay (with --only); the end-to-end harness (bench/e2e, suite 'e2e') is a separate run: always kept
  const kept = previousResults().filter((r) => !ran.has(r.suite) && (args.only !== null || r.suite === 'e2e'));
  const all = [...kept, ...fresh].sort((a, b) => a.suite.localeCompare(b.suite));

  console.log('');
  console.log(textTable(fresh.map(rowOf)));
  const failed = outcomes.filter((o) => !o.ok);
  if (failed.length > 0) console.log(`\nFAILED: ${failed.map((f) => f.suite).join(', ')}`);
  const load = os.loadavg()[0]!;
  // a suite's own threads add up to about the core count; more than that means other work competed
  if (load > os.cpus().length + 1) console.log(`\nnote: load average ${load.toFixed(1)} on ${os.cpus().length} cores: other work shared the CPUs, figures are noisy`);

  mkdirSync(RESULTS_DIR, { recursive: true });
  const date = new Date().toISOString();
  writeAtomic(LATEST_JSON, JSON.stringify(all, null, 2) + '\n');
  writeAtomic(RESULTS_MD, markdown(all, outcomes, args, date));
  console.log(`\nwrote ${path.relative(process.cwd(), LATEST_JSON)} (${all.length} figures) and ${path.relative(process.cwd(), RESULTS_MD)}`);
  return failed.length > 0 ? 1 : 0;
}

const code = await main();
process.exitCode = code;
// A suite that leaked a thread or handle would keep the process alive: exit once everything is written.
setTimeout(() => {
  console.error('bench: something is still running after all suites finished (a leaked worker or handle?); exiting');
  process.exit(code === 0 ? 1 : code);
}, 5_000).unref();
