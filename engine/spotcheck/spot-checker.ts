/**
 * Spot checks (the spec's "random spot checks for data accuracy", goal ≥ 99.9 %): sample random stored
 * ticks from Parquet and compare each with its source, field by field.
 *
 * - **Sierra file sources** (`scidPathOf(symbol, source)` names the `.scid` file): the row's `src_index`
 *   column (the record index in the file, carried from TRADE_SRC_INDEX through the journal or backfill)
 *   says where to re-read: the 40-byte record at `HeaderSize + src_index × 40` is decoded again (time in
 *   the file's encoding, Close/Low/High × the price multiplier, TotalVolume, the aggressor side) and
 *   compared with ts, price, bid, ask, size, side. Merged bundles (flag MERGED_BUNDLE) compare time and
 *   side only.
 * - **Live sources** (anything else): the journal. A sampled row whose hour still has its journal file
 *   is looked up there by (ts, seq, source); once an hour is compacted its journal is deleted, so the
 *   compaction service also calls {@link SpotChecker.checkJournalHour} after writing an hour's Parquet and
 *   before deleting its journal: random journal records are then looked up in the Parquet file.
 * A row with no reachable source (journal already deleted, file gone) counts as `skipped`, not as a match.
 *
 * Everything is async I/O (journal files are streamed in chunks, never read whole or synchronously) and
 * DuckDB on its own session, so it can run on the main thread; `runOnce` checks `samplePerRun` rows. Every
 * mismatch is kept in `status().mismatches` (bounded, newest last) with the stored and the source value.
 */
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { formatIsoMicros } from '../clock/iso.ts';
import { engineError, isEngineError, toWire } from '../errors.ts';
import { hourFilePath, slotViewsOf } from '../journal/format.ts';
import { CompactorDb } from '../../workers/compactor/duck.ts';
import { forEachJournalBlock } from '../../workers/compactor/journal-read.ts';
import { hourFileName, MICROS_PER_HOUR, partitionDir, readParquetSql, utcDateHour } from '../../workers/compactor/layout.ts';
import { resolvePartitionFiles } from '../../workers/compactor/partitions.ts';
import { Prng } from '../../workers/sim/prng.ts';
import { readScidHeader, scidDaysToUnixMicros, scidInt64ToUnixMicros, type ScidHeader } from '../../workers/sierra/scid-decoder.ts';
import {
  REC_ASK_VOLUME_BYTE, REC_BID_VOLUME_BYTE, REC_CLOSE_BYTE, REC_HIGH_BYTE, REC_LOW_BYTE, REC_TOTAL_VOLUME_BYTE, SCID_MAX_HEADER_BYTES,
  SCID_RECORD_BYTES,
} from '../../workers/sierra/scid-format.ts';
import {
  RecordKind, SEQ_BYTE, SOURCE_ID_BYTE, SYMBOL_ID_BYTE, TRADE_ASK_BYTE, TRADE_BID_BYTE, TRADE_FLAGS_BYTE, TRADE_PRICE_BYTE,
  TRADE_SIZE_BYTE, TradeFlag, TS_MICROS_BYTE,
} from '../../schemas/records.ts';

export interface SpotCheckerOptions {
  dataDir: string;
  /** Journal directory (default `<dataDir>/journal`). */
  journalDir?: string;
  /** The `.scid` file holding the rows of (symbol, source), or null when the source is not a Sierra file. */
  scidPathOf?(symbol: string, source: string): string | null;
  /** Price multiplier of a symbol's Sierra file (default 1). */
  priceMultiplierOf?(symbol: string): number;
  /** Names of journal ids (for journal checks; defaults as the compaction service: 1 'sierra', else `source<id>`). */
  symbolName?(id: number): string | undefined;
  sourceName?(id: number): string;
  /** Rows checked per run (default 50). */
  samplePerRun?: number;
  /** Period of `start()` (default 10 min). */
  intervalMs?: number;
  /** PRNG seed of the sampling (default: time-based). */
  seed?: number;
  /** Mismatches kept in status (default 1000). */
  maxMismatches?: number;
  now?: () => number;
}

export interface SpotMismatch {
  origin: 'scid' | 'journal';
  symbol: string;
  /** The Parquet file. */
  file: string;
  /** The source: `.scid` path + record index, or the journal file. */
  sourcePath: string;
  ts: string;
  seq: number;
  source: string;
  srcIndex: number | null;
  /** Differing fields with the stored and the source value (`missing` when the source has no such record). */
  fields: { field: string; stored: string; source: string }[];
  at: number;
}

export interface SpotCheckStatus {
  state: 'stopped' | 'idle' | 'running' | 'closed';
  runs: number;
  checked: number;
  matched: number;
  mismatched: number;
  skipped: number;
  /** matched / checked (1 when nothing was checked yet). */
  accuracy: number;
  /** The goal (0.999) is met. */
  goalMet: boolean;
  lastRunAt: number | null;
  lastError: { code: string; message: string; at: number } | null;
  mismatches: SpotMismatch[];
}

export interface SpotRunResult { checked: number; matched: number; mismatched: number; skipped: number }

/** A stored row as sampled from Parquet. */
interface Row { ts: number; price: number; size: number; bid: number; ask: number; side: string; source: string; seq: number; flags: number; srcIndex: number | null }

const SELECT_ROW = `epoch_us(ts)::DOUBLE, price, size::DOUBLE, bid, ask, side, source, seq::DOUBLE, flags::DOUBLE`;
const GOAL = 0.999;

function num(x: unknown): number {
  return x === null || x === undefined ? Number.NaN : Number(x);
}

function rowOf(r: unknown[], withSrc: boolean): Row {
  return {
    ts: num(r[0]), price: num(r[1]), size: num(r[2]), bid: num(r[3]), ask: num(r[4]), side: String(r[5] ?? ''), source: String(r[6] ?? ''),
    seq: num(r[7]), flags: num(r[8]), srcIndex: withSrc && r[9] !== null && r[9] !== undefined ? Number(r[9]) : null,
  };
}

const same = (a: number, b: number): boolean => a === b || (Number.isNaN(a) && Number.isNaN(b));
const fmt = (x: number): string => (Number.isNaN(x) ? 'NULL' : String(x));
const sideOf = (flags: number): string => ((flags & 3) === TradeFlag.SIDE_BUY ? 'B' : (flags & 3) === TradeFlag.SIDE_SELL ? 'S' : '');

function defaultSourceName(id: number): string {
  if (id === 1) return 'sierra';
  if (id === 2) return 'sierra-depth';
  return `source${id}`;
}

export class SpotChecker {
  readonly #o: SpotCheckerOptions;
  readonly #journalDir: string;
  readonly #rnd: Prng;
  readonly #now: () => number;
  #db: CompactorDb | null = null;
  #timer: ReturnType<typeof setInterval> | null = null;
  #running: Promise<SpotRunResult> | null = null;
  readonly #headers = new Map<string, ScidHeader>();
  readonly #st: SpotCheckStatus = {
    state: 'stopped', runs: 0, checked: 0, matched: 0, mismatched: 0, skipped: 0, accuracy: 1, goalMet: true, lastRunAt: null, lastError: null, mismatches: [],
  };

  constructor(opts: SpotCheckerOptions) {
    if (typeof opts.dataDir !== 'string' || opts.dataDir === '') throw engineError('ENGINE_ERR_INVALID_ARG', 'SpotChecker needs a dataDir', {});
    const n = opts.samplePerRun ?? 50;
    if (!Number.isInteger(n) || n < 1 || n > 100_000) throw engineError('ENGINE_ERR_INVALID_ARG', `samplePerRun must be 1..100000, got ${String(n)}`, {});
    this.#o = opts;
    this.#journalDir = opts.journalDir ?? join(opts.dataDir, 'journal');
    this.#now = opts.now ?? Date.now;
    this.#rnd = new Prng(opts.seed ?? (Date.now() % 2_147_483_647));
  }

  start(): void {
    if (this.#st.state !== 'stopped') return;
    this.#st.state = 'idle';
    this.#timer = setInterval(() => { void this.runOnce().catch(() => undefined); }, this.#o.intervalMs ?? 600_000);
    this.#timer.unref();
  }

  status(): SpotCheckStatus {
    return { ...this.#st, lastError: this.#st.lastError === null ? null : { ...this.#st.lastError }, mismatches: this.#st.mismatches.map((m) => ({ ...m, fields: m.fields.map((f) => ({ ...f })) })) };
  }

  async close(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#running !== null) await this.#running.catch(() => undefined);
    this.#st.state = 'closed';
    if (this.#db !== null) await this.#db.close();
    this.#db = null;
  }

  /** One sampling run over the stored Parquet (see the module comment). */
  runOnce(): Promise<SpotRunResult> {
    if (this.#st.state === 'closed') return Promise.reject(engineError('ENGINE_ERR_INVALID_ARG', 'SpotChecker is closed', {}));
    if (this.#running !== null) return this.#running;
    const p = this.#run().finally(() => { this.#running = null; if (this.#st.state === 'running') this.#st.state = 'idle'; });
    this.#running = p;
    return p;
  }

  /**
   * Journal → Parquet for one compacted hour, before its journal is deleted: `sample` random TRADE/QUOTE
   * records of the journal file are looked up in their symbol's hour file and compared.
   */
  async checkJournalHour(journalPath: string, hourStartMicros: number, sample = this.#o.samplePerRun ?? 50): Promise<SpotRunResult> {
    const out: SpotRunResult = { checked: 0, matched: 0, mismatched: 0, skipped: 0 };
    try {
      // reservoir sample of TRADE/QUOTE records, streamed (async, chunked: the main thread never blocks)
      const keep = new Uint8Array(Math.max(1, sample) * 64);
      let seen = 0;
      let kept = 0;
      await forEachJournalBlock(journalPath, hourStartMicros, (jv, off, count) => {
        for (let i = 0; i < count; i++) {
          const b = off + i * 64;
          const kind = jv.u8[b];
          if (kind !== RecordKind.TRADE && kind !== RecordKind.QUOTE) continue;
          seen++;
          let slot = -1;
          if (kept < sample) slot = kept++;
          else {
            const r = Math.floor(this.#rnd.next() * seen);
            if (r < sample) slot = r;
          }
          if (slot >= 0) keep.set(jv.u8.subarray(b, b + 64), slot * 64);
        }
      });
      const v = slotViewsOf(keep.buffer);
      const bySym = new Map<string, number[]>();
      for (let k = 0; k < kept; k++) {
        const b = k * 64;
        const name = (this.#o.symbolName ?? ((): undefined => undefined))(v.u16[(b + SYMBOL_ID_BYTE) >> 1] as number);
        if (name === undefined) { out.skipped++; continue; }
        let l = bySym.get(name);
        if (!l) bySym.set(name, (l = []));
        l.push(b);
      }
      const db = await this.#session();
      const { date, hour } = utcDateHour(hourStartMicros);
      for (const [symbol, bs] of bySym) {
        const file = join(partitionDir(this.#o.dataDir, 'ticks', symbol, date), hourFileName(hour));
        const seqs = [...new Set(bs.map((b) => v.u32[(b + SEQ_BYTE) >> 2] as number))];
        const rows = await db.exclusive((c) => CompactorDb.rows(c, `SELECT ${SELECT_ROW} FROM ${readParquetSql(file)} WHERE seq IN (${seqs.join(',')})`)).catch(() => null);
        for (const b of bs) {
          const want: Row = {
            ts: v.f64[(b + TS_MICROS_BYTE) >> 3] as number, price: v.f64[(b + TRADE_PRICE_BYTE) >> 3] as number, size: v.u32[(b + TRADE_SIZE_BYTE) >> 2] as number,
            bid: v.f64[(b + TRADE_BID_BYTE) >> 3] as number, ask: v.f64[(b + TRADE_ASK_BYTE) >> 3] as number, side: sideOf(v.u32[(b + TRADE_FLAGS_BYTE) >> 2] as number),
            source: (this.#o.sourceName ?? defaultSourceName)(v.u8[b + SOURCE_ID_BYTE] as number), seq: v.u32[(b + SEQ_BYTE) >> 2] as number,
            flags: v.u32[(b + TRADE_FLAGS_BYTE) >> 2] as number, srcIndex: null,
          };
          const cands = (rows ?? []).map((r) => rowOf(r, false)).filter((r) => r.ts === want.ts && r.seq === want.seq && r.source === want.source);
          const stored = cands.find((r) => this.#diff(r, want, true).length === 0) ?? cands[0];
          this.#record(out, 'journal', symbol, file, journalPath, want, stored === undefined ? [{ field: 'row', stored: 'missing', source: 'present' }] : this.#diff(stored, want, true));
        }
      }
    } catch (err) {
      this.#fail(err);
    }
    this.#add(out);
    return out;
  }

  // ---- internals -----------------------------------------------------------------------------------

  async #session(): Promise<CompactorDb> {
    this.#db ??= await CompactorDb.open({ threads: 1 });
    return this.#db;
  }

  #fail(err: unknown): void {
    const w = toWire(err);
    this.#st.lastError = { code: w.code, message: w.message, at: this.#now() };
  }

  #add(r: SpotRunResult): void {
    const s = this.#st;
    s.checked += r.checked;
    s.matched += r.matched;
    s.mismatched += r.mismatched;
    s.skipped += r.skipped;
    s.accuracy = s.checked === 0 ? 1 : s.matched / s.checked;
    s.goalMet = s.accuracy >= GOAL;
  }

  #record(out: SpotRunResult, origin: 'scid' | 'journal', symbol: string, file: string, sourcePath: string, row: Row, fields: SpotMismatch['fields']): void {
    out.checked++;
    if (fields.length === 0) {
      out.matched++;
      return;
    }
    out.mismatched++;
    const m = this.#st.mismatches;
    m.push({ origin, symbol, file, sourcePath, ts: formatIsoMicros(row.ts), seq: row.seq, source: row.source, srcIndex: row.srcIndex, fields, at: this.#now() });
    const max = this.#o.maxMismatches ?? 1000;
    if (m.length > max) m.splice(0, m.length - max);
  }

  /** Fields of `stored` that differ from `src`. `full`: also flags (journal records carry the validator's bits). */
  #diff(stored: Row, src: Row, full: boolean, sizeToo = true): SpotMismatch['fields'] {
    const d: SpotMismatch['fields'] = [];
    const cmp = (f: string, a: number, b: number): void => { if (!same(a, b)) d.push({ field: f, stored: fmt(a), source: fmt(b) }); };
    cmp('ts', stored.ts, src.ts);
    cmp('price', stored.price, src.price);
    if (sizeToo) cmp('size', stored.size, src.size);
    cmp('bid', stored.bid, src.bid);
    cmp('ask', stored.ask, src.ask);
    if (stored.side !== src.side) d.push({ field: 'side', stored: stored.side, source: src.side });
    if (full) cmp('flags', stored.flags, src.flags);
    return d;
  }

  async #symbols(): Promise<string[]> {
    const names = await readdir(join(this.#o.dataDir, 'ticks')).catch(() => [] as string[]);
    const out: string[] = [];
    for (const n of names) {
      if (!n.startsWith('symbol=')) continue;
      try {
        out.push(decodeURIComponent(n.slice('symbol='.length))); // layout.ts percent-encodes unsafe characters
      } catch {
        // not a name the compactor wrote: verify reports it
      }
    }
    return out.sort();
  }

  async #run(): Promise<SpotRunResult> {
    this.#st.state = 'running';
    this.#st.runs++;
    this.#st.lastRunAt = this.#now();
    const out: SpotRunResult = { checked: 0, matched: 0, mismatched: 0, skipped: 0 };
    try {
      const files: { symbol: string; path: string }[] = [];
      for (const symbol of await this.#symbols()) for (const path of await resolvePartitionFiles(this.#o.dataDir, 'ticks', symbol)) files.push({ symbol, path });
      /** Sampled rows of live sources, by journal hour: each hour file is streamed once. */
      const live = new Map<number, { symbol: string; file: string; row: Row }[]>();
      if (files.length > 0) {
        const want = this.#o.samplePerRun ?? 50;
        // spread the sample over random files (a few rows each)
        const perFile = new Map<number, number>();
        for (let i = 0; i < want; i++) {
          const f = Math.floor(this.#rnd.next() * files.length);
          perFile.set(f, (perFile.get(f) ?? 0) + 1);
        }
        const db = await this.#session();
        for (const [fi, k] of perFile) {
          const { symbol, path } = files[fi] as { symbol: string; path: string };
          const seed = Math.floor(this.#rnd.next() * 1e9);
          let rows: unknown[][];
          try {
            rows = await db.exclusive((c) => CompactorDb.rows(c,
              `SELECT ${SELECT_ROW}, src_index FROM ${readParquetSql(path)} USING SAMPLE reservoir(${k} ROWS) REPEATABLE (${seed})`));
          } catch {
            rows = await db.exclusive((c) => CompactorDb.rows(c, // files written before src_index existed
              `SELECT ${SELECT_ROW}, NULL FROM ${readParquetSql(path)} USING SAMPLE reservoir(${k} ROWS) REPEATABLE (${seed})`));
          }
          for (const r of rows) {
            const row = rowOf(r, true);
            if (!(await this.#checkScidRow(out, symbol, path, row))) {
              const hour = row.ts - (row.ts % MICROS_PER_HOUR);
              let l = live.get(hour);
              if (!l) live.set(hour, (l = []));
              l.push({ symbol, file: path, row });
            }
          }
        }
        for (const [hour, rowsOfHour] of live) await this.#checkLiveRows(out, hour, rowsOfHour);
      }
    } catch (err) {
      this.#fail(err);
    }
    this.#add(out);
    return out;
  }

  /** A row of a Sierra file source: re-read its record. False when the row is not from a Sierra file. */
  async #checkScidRow(out: SpotRunResult, symbol: string, file: string, row: Row): Promise<boolean> {
    const scid = this.#o.scidPathOf?.(symbol, row.source) ?? null;
    if (scid === null || row.srcIndex === null) return false;
    const src = await this.#readScid(scid, row.srcIndex, this.#o.priceMultiplierOf?.(symbol) ?? 1, (row.flags & TradeFlag.LEGACY_TIME) !== 0);
    if (src === null) {
      this.#record(out, 'scid', symbol, file, `${scid}#${row.srcIndex}`, row, [{ field: 'row', stored: 'present', source: 'missing' }]);
      return true;
    }
    src.seq = row.seq;
    src.source = row.source;
    src.srcIndex = row.srcIndex;
    this.#record(out, 'scid', symbol, file, `${scid}#${row.srcIndex}`, row, this.#diff(row, src, false, (row.flags & TradeFlag.MERGED_BUNDLE) === 0)
      .filter((f) => !((row.flags & TradeFlag.MERGED_BUNDLE) !== 0 && (f.field === 'price' || f.field === 'bid' || f.field === 'ask'))));
    return true;
  }

  /** Rows of live sources of one hour, against its journal file while it exists (one streamed pass). */
  async #checkLiveRows(out: SpotRunResult, hour: number, rows: { symbol: string; file: string; row: Row }[]): Promise<void> {
    const jpath = hourFilePath(this.#journalDir, hour);
    const byTs = new Map<number, number[]>(); // ts -> indexes into rows (a number key: no allocation per record)
    for (let i = 0; i < rows.length; i++) {
      const t = (rows[i] as { row: Row }).row.ts;
      const l = byTs.get(t);
      if (l) l.push(i);
      else byTs.set(t, [i]);
    }
    const best: (SpotMismatch['fields'] | null)[] = rows.map(() => null);
    const srcName = this.#o.sourceName ?? defaultSourceName;
    try {
      await forEachJournalBlock(jpath, hour, (v, off, count) => {
        for (let k = 0; k < count; k++) {
          const b = off + k * 64;
          const idx = byTs.get(v.f64[(b + TS_MICROS_BYTE) >> 3] as number);
          if (idx === undefined) continue;
          for (const i of idx) {
            const row = (rows[i] as { row: Row }).row;
            if (v.u32[(b + SEQ_BYTE) >> 2] !== row.seq || srcName(v.u8[b + SOURCE_ID_BYTE] as number) !== row.source) continue;
            const src: Row = {
              ts: row.ts, seq: row.seq, source: row.source, srcIndex: null, price: v.f64[(b + TRADE_PRICE_BYTE) >> 3] as number,
              size: v.u32[(b + TRADE_SIZE_BYTE) >> 2] as number, bid: v.f64[(b + TRADE_BID_BYTE) >> 3] as number, ask: v.f64[(b + TRADE_ASK_BYTE) >> 3] as number,
              side: sideOf(v.u32[(b + TRADE_FLAGS_BYTE) >> 2] as number), flags: v.u32[(b + TRADE_FLAGS_BYTE) >> 2] as number,
            };
            const d = this.#diff(row, src, true);
            const cur = best[i];
            if (cur === null || cur === undefined || d.length < cur.length) best[i] = d;
          }
        }
      });
    } catch (err) {
      // no journal for this hour any more (compacted and deleted): no source left. Anything else is reported.
      if (!isEngineError(err, 'ENGINE_ERR_FILE_IO') || err.detail.errno !== 'ENOENT') this.#fail(err);
      out.skipped += rows.length;
      return;
    }
    for (let i = 0; i < rows.length; i++) {
      const { symbol, file, row } = rows[i] as { symbol: string; file: string; row: Row };
      this.#record(out, 'journal', symbol, file, jpath, row, best[i] ?? [{ field: 'row', stored: 'present', source: 'missing' }]);
    }
  }

  /** Re-read and decode one `.scid` record; null when the file or the record is not there. */
  async #readScid(path: string, index: number, multiplier: number, legacy: boolean): Promise<Row | null> {
    let fh;
    try {
      fh = await open(path, 'r');
    } catch {
      return null;
    }
    try {
      let h = this.#headers.get(path);
      if (h === undefined) {
        const head = new Uint8Array(SCID_MAX_HEADER_BYTES);
        const { bytesRead } = await fh.read(head, 0, head.length, 0);
        h = readScidHeader(head.subarray(0, bytesRead), path, (await fh.stat()).size);
        this.#headers.set(path, h);
      }
      const rec = new Uint8Array(SCID_RECORD_BYTES);
      const { bytesRead } = await fh.read(rec, 0, SCID_RECORD_BYTES, h.headerBytes + index * SCID_RECORD_BYTES);
      if (bytesRead < SCID_RECORD_BYTES) return null;
      const dv = new DataView(rec.buffer);
      const ts = legacy ? scidDaysToUnixMicros(dv.getFloat64(0, true)) : scidInt64ToUnixMicros(dv.getUint32(0, true), dv.getInt32(4, true));
      // the decoder's arithmetic: ×0.01 is applied as ÷100 (exact for prices stored ×100)
      const inv = 1 / multiplier;
      const den = multiplier < 1 && Math.abs(inv - Math.round(inv)) <= 1e-9 * Math.round(inv) ? Math.round(inv) : 1;
      const scale = (x: number): number => (den !== 1 ? x / den : x * multiplier);
      const av = dv.getUint32(REC_ASK_VOLUME_BYTE, true);
      const bv = dv.getUint32(REC_BID_VOLUME_BYTE, true);
      return {
        ts, price: scale(dv.getFloat32(REC_CLOSE_BYTE, true)), bid: scale(dv.getFloat32(REC_LOW_BYTE, true)), ask: scale(dv.getFloat32(REC_HIGH_BYTE, true)),
        size: dv.getUint32(REC_TOTAL_VOLUME_BYTE, true), side: av !== 0 && bv === 0 ? 'B' : bv !== 0 && av === 0 ? 'S' : '', source: '', seq: 0, flags: 0, srcIndex: index,
      };
    } finally {
      await fh.close();
    }
  }
}
