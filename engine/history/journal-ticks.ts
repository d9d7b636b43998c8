/**
 * Tick rows of ONE symbol read from journal hour files (engine/journal/format.ts), for history queries
 * over hours that are not (or not yet verifiably) in Parquet: compaction off (TICKPIPE_COMPACT=0), failed,
 * not run yet, or running right now. Runs in a pool thread (journal-reader.ts), never on the uWS thread:
 * it reads files synchronously and walks every record.
 *
 * Rows are what the compactor would write to that hour's Parquet file (workers/compactor/tasks.ts
 * `compactHour`): TRADE and QUOTE records of the symbol (or TRADE records with a price only, for the
 * WebSocket replay), in (ts, seq) order within each hour (the compactor's sort); hours are given oldest
 * first and disjoint, so the whole result is in (ts, seq) order. Only whole, CRC-checked blocks are read
 * (workers/compactor/journal-read.ts `walkJournalBlocksSync`): a torn or in-flight tail is not data yet.
 *
 * Per hour outcome:
 * - `read`: the file was read (rows may be 0);
 * - `missing`: the file is gone (the compactor verified the hour's Parquet and deleted the journal between
 *   the caller's listing and this read: the caller reads that hour from Parquet instead);
 * - `corrupt`: ENGINE_ERR_JOURNAL (a bad block followed by a valid one, a header naming another hour) or
 *   another read error: the rows of the blocks before the fault are kept, the caller reports the hour as
 *   partly unavailable.
 * A result holding more than `maxRows` rows stops early with `tooMany` (the caller refuses the query
 * rather than hold unbounded memory).
 */
import { GrowableTickColumns, type TickRowColumns } from './tick-columns.ts';
import { isEngineError } from '../errors.ts';
import type { SlotViews } from '../ring/ring.ts';
import { JOURNAL_RECORD_BYTES } from '../journal/format.ts';
import {
  RecordKind, SEQ_BYTE, SOURCE_ID_BYTE, SYMBOL_ID_BYTE, TRADE_ASK_BYTE, TRADE_BID_BYTE, TRADE_FLAGS_BYTE, TRADE_PRICE_BYTE,
  TRADE_SIZE_BYTE, TS_MICROS_BYTE,
} from '../../schemas/records.ts';
import { walkJournalBlocksSync } from '../../workers/compactor/journal-read.ts';

export interface JournalHourRef {
  hourStartMicros: number;
  path: string;
}

export interface JournalTicksTask {
  kind: 'journal-ticks';
  hours: JournalHourRef[];
  symbolId: number;
  /** Rows with fromMicros ≤ ts < toMicros. */
  fromMicros: number;
  toMicros: number;
  /** TRADE records with a price only (WebSocket replay); else TRADE and QUOTE (what Parquet holds). */
  tradesOnly: boolean;
  /** Stop (tooMany) beyond this many rows. */
  maxRows: number;
}

export type JournalHourOutcome =
  | { hourStartMicros: number; state: 'read'; records: number; rows: number; tailBytes: number }
  | { hourStartMicros: number; state: 'missing' }
  | { hourStartMicros: number; state: 'corrupt'; rows: number; code: string; message: string };

/** Rows as columns (`length` valid; the arrays may be longer). */
export type JournalTicks = TickRowColumns;

export interface JournalTicksResult extends JournalTicks {
  kind: 'journal-ticks';
  hours: JournalHourOutcome[];
  tooMany: boolean;
}

/** Sort rows [a, b) of `c` by (ts, seq), stable (journal order breaks ties); no-op when already sorted. */
export function sortRange(c: JournalTicks, a: number, b: number): void {
  const ts = c.tsMicros;
  const seq = c.seq;
  let sorted = true;
  for (let i = a + 1; i < b; i++) {
    const d = (ts[i] as number) - (ts[i - 1] as number);
    if (d < 0 || (d === 0 && (seq[i] as number) < (seq[i - 1] as number))) { sorted = false; break; }
  }
  if (sorted) return;
  const n = b - a;
  const idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = a + i;
  idx.sort((x, y) => ((ts[x] as number) - (ts[y] as number)) || ((seq[x] as number) - (seq[y] as number)) || (x - y));
  const permute = <T extends Float64Array<ArrayBuffer> | Uint32Array<ArrayBuffer> | Uint8Array<ArrayBuffer>>(arr: T): void => {
    const tmp = arr.slice(a, b);
    for (let i = 0; i < n; i++) arr[a + i] = tmp[(idx[i] as number) - a] as number;
  };
  permute(c.tsMicros); permute(c.price); permute(c.bid); permute(c.ask);
  permute(c.size); permute(c.flags); permute(c.seq); permute(c.sourceId);
}

/** Read the task's hours (see the module comment). Synchronous: run it off the uWS thread. */
export function readJournalTicks(t: JournalTicksTask): JournalTicksResult {
  const out = new GrowableTickColumns(4096);
  const hours: JournalHourOutcome[] = [];
  const sym = t.symbolId;
  const from = t.fromMicros;
  const to = t.toMicros;
  const tradesOnly = t.tradesOnly;
  let tooMany = false;
  const visit = (v: SlotViews, off: number, count: number): void => {
    if (tooMany) return;
    const u8 = v.u8;
    const u16 = v.u16;
    const u32 = v.u32;
    const f64 = v.f64;
    const end = off + count * JOURNAL_RECORD_BYTES;
    for (let b = off; b < end; b += JOURNAL_RECORD_BYTES) {
      const kind = u8[b];
      if (kind !== RecordKind.TRADE && (tradesOnly || kind !== RecordKind.QUOTE)) continue;
      if (u16[(b + SYMBOL_ID_BYTE) >> 1] !== sym) continue;
      const q = b >> 3;
      const ts = f64[q + (TS_MICROS_BYTE >> 3)] as number;
      if (!(ts >= from && ts < to)) continue;
      const price = f64[q + (TRADE_PRICE_BYTE >> 3)] as number;
      if (tradesOnly && Number.isNaN(price)) continue;
      let k = out.length;
      if (k >= t.maxRows) { tooMany = true; return; }
      if (k === out.capacity) out.reserve(k + 1);
      const w = b >> 2;
      out.tsMicros[k] = ts;
      out.price[k] = price;
      out.bid[k] = f64[q + (TRADE_BID_BYTE >> 3)] as number;
      out.ask[k] = f64[q + (TRADE_ASK_BYTE >> 3)] as number;
      out.size[k] = u32[w + (TRADE_SIZE_BYTE >> 2)] as number;
      out.flags[k] = u32[w + (TRADE_FLAGS_BYTE >> 2)] as number;
      out.seq[k] = u32[w + (SEQ_BYTE >> 2)] as number;
      out.sourceId[k] = u8[b + SOURCE_ID_BYTE] as number;
      out.length = ++k;
    }
  };
  for (const h of t.hours) {
    if (tooMany) break;
    const first = out.length;
    try {
      const r = walkJournalBlocksSync(h.path, h.hourStartMicros, visit, { chunkBytes: 4 << 20 });
      hours.push({ hourStartMicros: h.hourStartMicros, state: 'read', records: r.records, rows: out.length - first, tailBytes: r.tailBytes });
    } catch (err) {
      if (isEngineError(err, 'ENGINE_ERR_FILE_IO') && err.detail.errno === 'ENOENT' && out.length === first) {
        hours.push({ hourStartMicros: h.hourStartMicros, state: 'missing' });
      } else {
        const code = isEngineError(err) ? err.code : 'ENGINE_ERR';
        hours.push({ hourStartMicros: h.hourStartMicros, state: 'corrupt', rows: out.length - first, code, message: err instanceof Error ? err.message : String(err) });
      }
    }
    sortRange(out, first, out.length);
  }
  return { kind: 'journal-ticks', ...out.toPlain(), hours, tooMany };
}
