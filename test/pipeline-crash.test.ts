/**
 * kill -9 of the engine process during ingest, at random points, then restart: the journal holds every
 * source tick exactly once (no loss, no duplicate), and the quarantine every injected bad tick exactly
 * once. The engine runs in a child process (test/fixtures/pipeline-engine-child.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, expect, test } from 'vitest';
import { Journal } from '../engine/journal/journal.ts';
import { QuarantineStore } from '../engine/validate/stores.ts';
import { RecordKind, readF64, readKind, readSeq, readSymbolId, readU32 } from '../schemas/records.ts';
import { PIPELINE_SYMBOLS, writePipelineFiles } from './fixtures/pipeline-ticks.ts';

const CHILD = new URL('./fixtures/pipeline-engine-child.ts', import.meta.url).pathname;
const TICKS = 120_000;
/** Kill points (each is one engine start, a few seconds on a loaded 2-core machine): TICKPIPE_CRASH_KILLS for more. */
const KILLS = Number(process.env.TICKPIPE_CRASH_KILLS ?? 2);
const HOUR = 3_600_000_000;
let dir = '';

afterAll(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

interface Run { child: ChildProcess; lines: AsyncIterableIterator<string>; exited: Promise<number | null> }

function startChild(dataDir: string, src: string): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dataDir, src, PIPELINE_SYMBOLS.join(','), '4096'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, lines, exited };
}

async function nextStats(run: Run): Promise<Record<string, number> | null> {
  const r = await run.lines.next();
  if (r.done) return null;
  return JSON.parse(r.value) as Record<string, number>;
}

test('kill -9 at random points during ingest, restart: every source tick exactly once in the journal', async () => {
  dir = mkdtempSync(join(tmpdir(), 'tickpipe-crash-'));
  const src = join(dir, 'sierra');
  const data = join(dir, 'data');
  mkdirSync(src);
  const exp = await writePipelineFiles(src, TICKS, { seed: 11 });
  // seeded from the clock, printed so that a failure can be replayed
  const seed = Date.now() % 100_000;
  let rnd = seed;
  const random = (): number => { rnd = (rnd * 48271) % 2147483647; return rnd / 2147483647; };
  let journaledSoFar = 0;
  const kills: string[] = [];
  for (let k = 0; k < KILLS; k++) {
    const run = startChild(data, src);
    // kill once this run has journaled a random share of what is left (or at a random time after start)
    const target = Math.floor((exp.goodTotal - journaledSoFar) * (0.1 + 0.5 * random()));
    let last: Record<string, number> | null = null;
    // journaledSoFar counts what the last stats line before each kill said, so it can be short of what was
    // journaled by the kill: the target may then be more than this run has left to do. A run that has gone
    // idle (nothing new for 500 ms, everything committed and released) is killed there instead of waited on.
    let prev = -1;
    let idleSince = Date.now();
    for (;;) {
      const s = await nextStats(run);
      if (s === null) break;
      if (s.started) continue;
      last = s;
      if ((s.journaled ?? 0) >= target) break;
      const idle = s.records === prev && s.journalCommittedSeq === s.journalAppendedSeq && s.released === s.records;
      if (!idle) { idleSince = Date.now(); prev = s.records ?? 0; } else if (Date.now() - idleSince > 500) break;
    }
    run.child.kill('SIGKILL');
    await run.exited;
    journaledSoFar += last?.journaled ?? 0;
    kills.push(`run ${k}: killed after journaling ${last?.journaled ?? 0} (target ${target}), replayed ${last?.replayed ?? 0}`);
  }
  // final run: until idle, then a graceful stop
  const run = startChild(data, src);
  let idleSince = 0;
  let prev = -1;
  const deadline = Date.now() + 120_000;
  for (;;) {
    const s = await nextStats(run);
    if (s === null) throw new Error('child exited early');
    if (s.started) continue;
    const done = s.records === prev && s.journalCommittedSeq === s.journalAppendedSeq && s.released === s.records;
    if (!done) { idleSince = Date.now(); prev = s.records ?? 0; } else if (Date.now() - idleSince > 800) break;
    if (Date.now() > deadline) throw new Error(`final run did not settle (seed ${seed}): ${JSON.stringify(s)}`);
  }
  run.child.kill('SIGTERM');
  expect(await run.exited).toBe(0);
  console.log(`crash test seed ${seed}:\n  ${kills.join('\n  ')}`);

  const ids = new Map<number, string>();
  const j = Journal.open({ dataDir: data, commitIntervalMs: 0 });
  const count = new Map<number, number>(); // symbolId * 1e9 + seq → times
  const hours = new Map<string, { count: number; sumTicksXSize: number }>();
  try {
    j.replay('open-hours', (v, off, n, hour) => {
      for (let i = 0; i < n; i++) {
        const b = off + i * 64;
        if (readKind(v, b) !== RecordKind.TRADE) continue;
        const key = readSymbolId(v, b) * 1e9 + readSeq(v, b);
        count.set(key, (count.get(key) ?? 0) + 1);
        const h = hours.get(`${readSymbolId(v, b)}|${hour}`) ?? { count: 0, sumTicksXSize: 0 };
        h.count++;
        h.sumTicksXSize += Math.round(readF64(v, b, 16) * 4) * readU32(v, b, 40);
        hours.set(`${readSymbolId(v, b)}|${hour}`, h);
      }
    });
  } finally {
    await j.close();
  }
  const twice = [...count.entries()].filter(([, c]) => c > 1);
  expect({ seed, kills, duplicates: twice.length }).toEqual({ seed, kills, duplicates: 0 });
  expect({ seed, kills, journaled: count.size }).toEqual({ seed, kills, journaled: exp.goodTotal });
  // per symbol-hour: symbol ids are registered in PIPELINE_SYMBOLS order (1, 2, 3)
  PIPELINE_SYMBOLS.forEach((s, i) => ids.set(i + 1, s));
  for (const [k, want] of exp.hours) {
    const [sym, hour] = k.split('|');
    const id = [...ids.entries()].find(([, s]) => s === sym)![0];
    expect(Number(hour) % HOUR).toBe(0);
    expect({ k, ...hours.get(`${id}|${hour}`) }).toEqual({ k, count: want.count, sumTicksXSize: want.sumTicksXSize });
  }
  const q = await new QuarantineStore(data, (id) => ids.get(id) ?? null).query({ includeFlagged: false, limit: 100_000 });
  const got = q.map((e) => `${e.symbol}|${e.seq}|${e.reason}`).sort();
  expect(got).toEqual(exp.bad.map((b) => `${b.symbol}|${b.seq}|${b.reason}`).sort());
}, 180_000);
