/**
 * Two-thread test of the hot window: a real worker thread (fixtures/appender.worker.ts) appends trades to
 * two symbols as fast as it can into 1024-entry rings (they wrap thousands of times a second), while this
 * thread runs newest / since / count queries and checks every answer:
 * - every row is internally consistent (all fields derived from its seq, appender-protocol.ts): not torn;
 * - rows are contiguous (seq + 1) and ordered by ts;
 * - no overwritten row: the rows are exactly the entries the query asked for (first row = the first
 *   trade at or after max(since, heldFrom); newest row = the newest published when the query started or
 *   later), none older than what the ring still held when the query started;
 * - heldFromMicros never claims more than the ring held, and is not needlessly conservative;
 * - the expiry-bound symbol always answers exactly its last retainMicros (boundary included).
 * Symbol 1 ("ring-bound"): ts advances 1 µs every 2 trades (pairs share a ts), so the ring, not the hour,
 * limits it. Symbol 2 ("expiry-bound"): ts advances 1 ms per trade and retainMicros is 300 ms: 301 rows.
 *
 * Negative control: copying the oldest entries of the ring straight from the buffer WITHOUT the re-check
 * does return overwritten rows while the writer runs, which the same checks catch (asserted only when the
 * two threads demonstrably ran side by side: the machine has two shared cores).
 */
import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, test } from 'vitest';
import { fromWire } from '../errors.ts';
import { spawnWorker, waitForMessage } from '../worker-host.ts';
import { Prng } from '../../workers/sim/prng.ts';
import { createHotColumns, type HotColumns } from './hot-columns.ts';
import { HOT_BUSY, HotWindow } from './hot-window.ts';
import { hotRegions } from './layout.ts';
import {
  APPENDER_CONTROL_BYTES, RUNNING_I32, STOP_I32, WRITTEN_I32, tradeFlags, tradePrice, tradeSize, tradeSource, tradeTs,
  type AppenderData,
} from './fixtures/appender-protocol.ts';

const BASE = 1_763_000_000_000_000;
const CAP = 1024;
const RING_ID = 1;
const EXP_ID = 2;
const RING_STEP = 0.5;
const EXP_STEP = 1000;
const RETAIN = 300 * EXP_STEP;
const EXP_ROWS = RETAIN / EXP_STEP + 1; // 301: both ends of the retention included
const QUERY_MS = 2500;
const WARM_ROUNDS = 8 * CAP;

const STEP_OF: Record<number, number> = { [RING_ID]: RING_STEP, [EXP_ID]: EXP_STEP };

let worker: Worker | undefined;
afterEach(async () => {
  if (worker) await worker.terminate();
  worker = undefined;
});

const isMsg = <C extends string>(code: C) => (m: unknown): m is { code: C } & Record<string, unknown> =>
  typeof m === 'object' && m !== null && (m as { code?: unknown }).code === code;

/** '' when row i is exactly trade `seq[i]` of symbol `id`; else what is wrong. */
function rowError(id: number, c: number, ts: number, price: number, bid: number, ask: number, size: number, flags: number, src: number): string {
  const p = tradePrice(c);
  if (ts !== tradeTs(BASE, STEP_OF[id]!, c)) return `ts ${ts} is not trade ${c}'s`;
  if (price !== p || bid !== p - 0.25 || ask !== p + 0.25) return `prices ${price}/${bid}/${ask} are not trade ${c}'s`;
  if (size !== tradeSize(id, c) || flags !== tradeFlags(c) || src !== tradeSource(id, c)) return `size/flags/source ${size}/${flags}/${src} are not trade ${c}'s`;
  return '';
}

/** '' when the answer's rows are consistent, contiguous and ordered, inside [heldFrom, newest]. */
function answerError(out: HotColumns, id: number): string {
  for (let i = 0; i < out.length; i++) {
    const c = out.seq[i]!;
    const e = rowError(id, c, out.tsMicros[i]!, out.price[i]!, out.bid[i]!, out.ask[i]!, out.size[i]!, out.flags[i]!, out.sourceId[i]!);
    if (e !== '') return `row ${i}: ${e}`;
    if (i > 0 && c !== out.seq[i - 1]! + 1) return `row ${i}: seq ${c} does not follow ${out.seq[i - 1]!}`;
    if (i > 0 && out.tsMicros[i]! < out.tsMicros[i - 1]!) return `row ${i}: ts goes backwards`;
    if (out.tsMicros[i]! < out.heldFromMicros) return `row ${i}: ts ${out.tsMicros[i]!} is before heldFrom ${out.heldFromMicros}`;
    if (out.tsMicros[i]! > out.newestTsMicros) return `row ${i}: ts after the snapshot's newest`;
  }
  return '';
}

/** Smallest trade number c of symbol `id` with ts(c) ≥ x. */
function firstTradeAtOrAfter(id: number, x: number): number {
  return Math.max(0, Math.ceil((x - BASE) / STEP_OF[id]!));
}

function fillRow(out: HotColumns, i: number, id: number, c: number): void {
  const p = tradePrice(c);
  out.tsMicros[i] = tradeTs(BASE, STEP_OF[id]!, c); out.price[i] = p; out.bid[i] = p - 0.25; out.ask[i] = p + 0.25;
  out.size[i] = tradeSize(id, c); out.flags[i] = tradeFlags(c); out.seq[i] = c; out.sourceId[i] = tradeSource(id, c);
}

async function startAppender(hot: HotWindow): Promise<{ w: Worker; ctl: Int32Array; failure: () => Error | undefined }> {
  const control = new SharedArrayBuffer(APPENDER_CONTROL_BYTES);
  const data: AppenderData = { hot: hot.buffer, control, ids: [RING_ID, EXP_ID], tsStepMicros: [RING_STEP, EXP_STEP], baseMicros: BASE, maxRounds: 0 };
  const w = (worker = spawnWorker(new URL('./fixtures/appender.worker.ts', import.meta.url), data, { name: 'hot-appender' }));
  let failure: Error | undefined;
  w.on('message', (m: unknown) => { if (isMsg('FAILED')(m)) failure = fromWire(m.error); });
  w.on('error', (e) => { failure = e; });
  await waitForMessage(w, isMsg('READY'));
  const ctl = new Int32Array(control);
  while (Atomics.load(ctl, WRITTEN_I32) < WARM_ROUNDS) {
    if (failure) throw failure;
    await new Promise((r) => setTimeout(r, 1));
  }
  return { w, ctl, failure: () => failure };
}

async function stopAppender(a: { w: Worker; ctl: Int32Array }): Promise<{ rounds: number; rejected: number }> {
  Atomics.store(a.ctl, STOP_I32, 1);
  const done = await waitForMessage(a.w, isMsg('DONE'));
  return { rounds: done.rounds as number, rejected: done.rejected as number };
}

describe('hot window: one writer thread, queries on this thread', () => {
  test('the checks reject torn, non-contiguous, misplaced and out-of-range rows (so a clean run means something)', () => {
    const out = createHotColumns(8);
    const good = (): void => {
      for (let i = 0; i < 8; i++) fillRow(out, i, RING_ID, 5000 + i);
      out.length = 8; out.heldFromMicros = out.tsMicros[0]!; out.newestTsMicros = out.tsMicros[7]!;
    };
    good();
    expect(answerError(out, RING_ID)).toBe('');
    expect(answerError(out, EXP_ID)).not.toBe(''); // right rows, wrong symbol
    const breakers: [string, () => void][] = [
      ['ts', () => { out.tsMicros[3] = out.tsMicros[3]! + 1; }],
      ['price', () => { out.price[5] = out.price[5]! + 0.25; }],
      ['bid', () => { out.bid[0] = NaN; }],
      ['ask', () => { out.ask[7] = 0; }],
      ['size', () => { out.size[2] = out.size[2]! + 1; }],
      ['flags', () => { out.flags[4] = 0; }],
      ['source', () => { out.sourceId[6] = (out.sourceId[6]! + 1) & 0xff; }],
      ['a row from one lap later (overwritten)', () => { fillRow(out, 4, RING_ID, 5004 + CAP); }],
      ['a gap', () => { for (let i = 4; i < 8; i++) fillRow(out, i, RING_ID, 5001 + i); }],
      ['a duplicate', () => { fillRow(out, 4, RING_ID, 5003); }],
      ['rows before heldFrom', () => { out.heldFromMicros = out.tsMicros[2]!; }],
      ['rows after the newest', () => { out.newestTsMicros = out.tsMicros[5]!; }], // 6 and 7 share a ts
    ];
    for (const [what, breakIt] of breakers) {
      good();
      breakIt();
      expect(answerError(out, RING_ID), what).not.toBe('');
    }
    expect(firstTradeAtOrAfter(RING_ID, BASE + 10)).toBe(20);
    expect(firstTradeAtOrAfter(EXP_ID, BASE + 10_001)).toBe(11);
    expect(firstTradeAtOrAfter(EXP_ID, BASE - 5)).toBe(0);
  });

  test(`queries for ${QUERY_MS} ms while a worker appends millions of trades into ${CAP}-entry rings: every answer consistent, contiguous, ordered, never overwritten`, async ({ annotate }) => {
    const hot = HotWindow.create({ symbols: 2, capacityPerSymbol: CAP, retainMicros: RETAIN });
    const reader = HotWindow.attach(hot.buffer);
    const maxHeld = reader.maxHeldPerSymbol;
    const minHeld = maxHeld - (maxHeld >>> 1); // the most a query gives up to a writer lapping it
    const a = await startAppender(hot);
    const prng = new Prng(0x4071);
    const out = createHotColumns(512);
    let queries = 0, busy = 0, overlapped = 0;
    const errors: string[] = [];
    const fail = (what: string): void => { if (errors.length < 5) errors.push(`${what} [query ${queries}]`); };
    const roundsAtStart = Atomics.load(a.ctl, WRITTEN_I32);
    const t0 = performance.now();
    while (performance.now() - t0 < QUERY_MS && errors.length === 0) {
      if (a.failure()) throw a.failure()!;
      for (let q = 0; q < 64; q++) {
        queries++;
        const kind = q & 7;
        const id = kind < 5 ? RING_ID : EXP_ID;
        const before = reader.appended(id);
        let n: number;
        let t = NaN, limit = 0;
        if (kind === 7) {
          const c1 = reader.count(RING_ID), c2 = reader.count(EXP_ID);
          if (c1 === HOT_BUSY || c2 === HOT_BUSY) { busy++; continue; }
          if (c1 < minHeld - 2 || c1 > maxHeld - 1) fail(`count(ring) ${c1} outside [${minHeld - 2}, ${maxHeld - 1}]`);
          if (c2 !== EXP_ROWS) fail(`count(expiry) ${c2}, want ${EXP_ROWS}`);
          continue;
        }
        if (kind <= 2) n = reader.newest(RING_ID, 100, out);
        else if (kind <= 4) {
          t = tradeTs(BASE, RING_STEP, Math.max(0, before - prng.int(0, CAP + 200)));
          limit = prng.int(0, 600);
          n = reader.since(RING_ID, t, limit, out);
        } else if (kind === 5) n = reader.newest(EXP_ID, 500, out);
        else {
          t = tradeTs(BASE, EXP_STEP, before - prng.int(0, 400)) + prng.int(-1, 1);
          limit = prng.int(0, 600);
          n = reader.since(EXP_ID, t, limit, out);
        }
        const after = reader.appended(id);
        if (after - before > 0 && after - before < 1000) overlapped++;
        if (n === HOT_BUSY) { busy++; continue; }
        if (n !== out.length) { fail(`returned ${n} but out.length ${out.length}`); continue; }
        const e = answerError(out, id);
        if (e !== '') { fail(`${kind <= 2 || kind === 5 ? 'newest' : 'since'}(${id}): ${e}`); continue; }
        const first = out.seq[0]!, last = out.seq[n - 1]!;
        // heldFrom: never more than the ring held when the query started; at most the slack conservative
        const hfLow = id === RING_ID ? tradeTs(BASE, RING_STEP, before - maxHeld) + 1 : tradeTs(BASE, EXP_STEP, before - 1) - RETAIN;
        const hfHigh = id === RING_ID ? tradeTs(BASE, RING_STEP, after - minHeld) + 1 : tradeTs(BASE, EXP_STEP, after - 1) - RETAIN;
        if (out.heldFromMicros < hfLow || out.heldFromMicros > hfHigh) fail(`heldFrom ${out.heldFromMicros - BASE} outside [${hfLow - BASE}, ${hfHigh - BASE}] (appended ${before}..${after})`);
        if (id === EXP_ID && out.heldFromMicros !== out.newestTsMicros - RETAIN) fail(`expiry-bound heldFrom ${out.heldFromMicros} is not newest − retain`);
        if (n > 0 && first < before - CAP + 1) fail(`row seq ${first} was already overwritten when the query started (appended ${before})`);
        if (kind <= 2 || kind === 5) {
          const want = kind <= 2 ? 100 : EXP_ROWS;
          if (n !== want) fail(`newest(${id}) returned ${n} rows, want ${want}`);
          if (last < before - 1 || last > after - 1) fail(`newest row ${last} is not the newest published (appended ${before}..${after})`);
          if (out.tsMicros[n - 1] !== out.newestTsMicros) fail('newest row is not the snapshot newest');
          if (out.more !== (kind <= 2)) fail(`newest(${id}).more = ${out.more}`);
          if (kind === 5 && out.tsMicros[0] !== out.newestTsMicros - RETAIN) fail('the expiry-bound window does not start exactly retainMicros before its newest');
        } else {
          const from = Math.max(t, out.heldFromMicros);
          const want1 = firstTradeAtOrAfter(id, from);
          const cap = Math.min(limit, out.capacity);
          if (n > 0 && first !== want1) fail(`since(${id}, ${t - BASE}): first row ${first}, want ${want1} (heldFrom ${out.heldFromMicros - BASE})`);
          if (out.more) {
            if (n !== cap) fail(`since(${id}) more=true with ${n} of ${cap} rows`);
          } else if (n > 0) {
            if (out.tsMicros[n - 1] !== out.newestTsMicros || last < before - 1 || last > after - 1) fail(`since(${id}) stopped at ${last} before the newest (appended ${before}..${after})`);
          } else if (cap > 0 && !(from > out.newestTsMicros)) fail(`since(${id}, ${t - BASE}) found nothing although ${from - BASE} <= newest ${out.newestTsMicros - BASE}`);
        }
      }
    }
    const roundsAtEnd = Atomics.load(a.ctl, WRITTEN_I32);
    const { rounds, rejected } = await stopAppender(a);
    const st = reader.stats();
    const summary = `${queries} queries (busy ${busy}, retries ${st.reader.retries}, overlapped by the writer ${overlapped}); writer appended ${2 * (roundsAtEnd - roundsAtStart)} trades while we queried (${2 * rounds} in all, rings wrapped ~${Math.floor(rounds / CAP)} times)`;
    console.info(`[hot concurrent] ${summary}`);
    await annotate(summary);
    expect(errors).toEqual([]);
    expect(rejected).toBe(0);
    // final state, writer stopped: the newest rows are the last trades it appended
    expect(reader.newest(RING_ID, 100, out)).toBe(100);
    expect(answerError(out, RING_ID)).toBe('');
    expect(out.seq[99]).toBe(rounds - 1);
    expect(reader.newest(EXP_ID, 500, out)).toBe(EXP_ROWS);
    expect(out.seq[EXP_ROWS - 1]).toBe(rounds - 1);
    expect(st.perSymbol.map((s) => [s.id, s.appended, s.wrapped, s.rejectedOutOfOrder])).toEqual([[RING_ID, rounds, true, 0], [EXP_ID, rounds, true, 0]]);
    expect(reader.appended(RING_ID)).toBe(rounds);
    expect(reader.appended(EXP_ID)).toBe(rounds);
    // the run meant something: millions of trades, the rings wrapped constantly, queries ran alongside
    expect(2 * (roundsAtEnd - roundsAtStart)).toBeGreaterThan(2_000_000);
    expect(queries).toBeGreaterThan(10_000);
    expect(busy).toBeLessThanOrEqual(Math.ceil(queries / 1000)); // transient only (a descheduled reader)
    expect(Atomics.load(a.ctl, RUNNING_I32)).toBe(1);
  });

  test('a 16-entry ring (guard of 1 entry): the re-check boundary itself holds under a writer lapping every query', async ({ annotate }) => {
    // Here the oldest entry a query touches is the one right after the slot the writer rewrites next: any
    // append during a query can make the re-check fail, and the answers must still be whole entries.
    // (An off-by-one in the re-check itself needs the writer to be inside that exact slot during the
    // copy, a window of a few ns: this run does not reliably catch it; the argument is in hot-window.ts.)
    const TINY = 16;
    const hot = HotWindow.create({ symbols: 2, capacityPerSymbol: TINY, retainMicros: RETAIN });
    const reader = HotWindow.attach(hot.buffer);
    expect(reader.maxHeldPerSymbol).toBe(TINY - 1);
    const a = await startAppender(hot);
    const out = createHotColumns(TINY);
    let queries = 0, busy = 0, rows = 0;
    const errors: string[] = [];
    const t0 = performance.now();
    while (performance.now() - t0 < 1000 && errors.length === 0) {
      for (let q = 0; q < 64; q++) {
        queries++;
        const before = reader.appended(RING_ID);
        const n = (q & 1) === 0 ? reader.newest(RING_ID, TINY, out) : reader.since(RING_ID, -Infinity, TINY, out);
        if (n === HOT_BUSY) { busy++; continue; }
        rows += n;
        const e = answerError(out, RING_ID);
        if (e !== '') errors.push(`query ${queries}: ${e}`);
        else if (n > 0 && out.seq[0]! < before - TINY + 1) errors.push(`query ${queries}: row ${out.seq[0]!} was overwritten before the query (appended ${before})`);
      }
    }
    const { rejected } = await stopAppender(a);
    const st = reader.stats().reader;
    const summary = `${queries} queries on a ${TINY}-entry ring: rows ${rows}, busy ${busy}, retries ${st.retries}`;
    console.info(`[hot concurrent tiny] ${summary}`);
    await annotate(summary);
    expect(errors).toEqual([]);
    expect(rejected).toBe(0);
    expect(rows).toBeGreaterThan(0);
  });

  test('negative control: copying the oldest entries WITHOUT the re-check returns overwritten rows', async ({ annotate }) => {
    const hot = HotWindow.create({ symbols: 2, capacityPerSymbol: CAP, retainMicros: RETAIN });
    const r = hotRegions(2, CAP);
    const seqCol = new Uint32Array(hot.buffer, r.seqByte, 2 * CAP);
    const tsCol = new Float64Array(hot.buffer, r.tsByte, 2 * CAP);
    const a = await startAppender(hot);
    let reads = 0, overwritten = 0, torn = 0, smallSteps = 0;
    const end = performance.now() + 1000;
    while (performance.now() < end) {
      for (let k = 0; k < 256; k++) {
        const before = hot.appended(RING_ID);
        const lo = before - CAP + 1; // the oldest entries the ring still holds
        let bad = false;
        for (let i = 0; i < 64; i++) {
          const idx = lo + i;
          const slot = idx & (CAP - 1); // symbol 1's stretch starts at 0
          const c = seqCol[slot]!;
          if (c !== idx) bad = true; // a later lap's row sits where entry idx should be
          else if (tsCol[slot] !== tradeTs(BASE, RING_STEP, c)) torn++;
        }
        reads++;
        if (bad) overwritten++;
        const step = hot.appended(RING_ID) - before;
        if (step > 0 && step < 1000) smallSteps++;
      }
    }
    await stopAppender(a);
    const summary = `unchecked copies of the 64 oldest entries: ${reads}, with an overwritten row ${overwritten} (${((100 * overwritten) / Math.max(1, reads)).toFixed(1)}%), torn ${torn}; parallelism evidence ${smallSteps}`;
    console.info(`[hot negative control] ${summary}`);
    await annotate(summary);
    expect(reads).toBeGreaterThan(0);
    if (smallSteps >= 1000) expect(overwritten).toBeGreaterThan(0);
  });
});
