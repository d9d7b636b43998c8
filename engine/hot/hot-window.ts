/**
 * The hot window (DESIGN.md §2): the last hour of trades per symbol in one SharedArrayBuffer, as
 * bounded per-symbol rings of columns (ts, price, bid, ask f64; size, flags, seq u32; source u8; layout
 * in `layout.ts`). One writer thread (the validator) appends validated trades; any number of readers on
 * other threads (the uWS thread answering `/api/v1/ticks/realtime`, WebSocket replay) answer "newest N"
 * and "since T" without locks, without allocation and without ever blocking the writer.
 *
 * ## What the window answers: the logical window of a symbol
 *
 * - **Order.** ts is non-decreasing per symbol: `append` REJECTS (returns false, never throws) a trade
 *   whose ts is older than the symbol's newest, and a NaN or infinite ts. The validator flags
 *   out-of-order ticks (TradeFlag.V_OUT_OF_ORDER) and still journals them; here they would break the
 *   binary search. Equal ts are fine (kept in append order).
 * - **Expiry.** Entries with ts < newestTs − retainMicros are logically expired (never answered);
 *   an entry exactly retainMicros older than the newest is kept. "Newest" is the symbol's own newest
 *   trade, not the wall clock: a symbol that stopped trading keeps its last hour.
 * - **Overwrite.** The ring overwrites its oldest entry when full. Readers use at most
 *   `maxHeldPerSymbol` = capacity − guard entries (layout.ts `guardEntries`): the writer may be rewriting
 *   the oldest slot while a reader copies, so the guard is never answered from.
 * - **Completeness (`heldFromMicros`).** The window answers only from a range where it holds EVERY trade
 *   the writer was given: `heldFromMicros` is the smallest ts from which that is true, and every answer
 *   reports it (`HotColumns.heldFromMicros`, from the same snapshot as its rows). It is the largest of
 *   - newestTs − retainMicros (the hour itself);
 *   - the ts of the first entry ever appended, while it is still held (nothing older was given to the
 *     window: after a restart the validator replays the journal, and the API fills older ticks from
 *     Parquet);
 *   - the oldest held ts + 1 µs once anything before it was overwritten (the lost entry may have had the
 *     same ts, so rows at exactly that ts are not claimed, and not returned);
 *   - the largest rejected-as-out-of-order ts + 1 µs (that trade exists but is not here).
 *   ts are integer Unix µs (schemas/records.ts), hence "+ 1 µs". `newest`/`since`/`count` only return
 *   rows with ts ≥ heldFromMicros; the API fills [its start, heldFromMicros) from Parquet/the journal
 *   instead of presenting a partial hour as complete.
 *
 * ## Concurrency: publish-after-write, copy, re-check
 *
 * Writer (single thread per window): write the 8 columns of entry `n` with plain typed-array stores into
 * slot n & mask, then `Atomics.store(HEAD, n + 1)`. Reader: load the appended count (HEAD with its high
 * word, `readAppended`), work out the range, copy it (and the ts probes of the binary search) with plain
 * loads, then load the count again as `total2`. Having published `total2`, the writer may be writing entry
 * total2 — the slot of entry total2 − capacity — but no slot of an entry above it. So the copy is intact
 * iff the oldest entry the query touched is > total2 − capacity. If not, the query is retried with a
 * larger margin ("slack": fewer of the oldest entries used) so that it finishes before a fast writer laps
 * it; after READ_ATTEMPTS it gives up and returns HOT_BUSY (a normal, transient state: a reader
 * descheduled while the writer wrapped a small ring; never seen at the default capacity). A torn entry is
 * therefore never returned: rows are always one snapshot's complete, contiguous entries.
 *
 * why it holds in JavaScript (same argument as engine/latest/latest-table.ts): Atomics.load/store are
 * sequentially consistent and V8 does not move typed-array accesses across them, and x86-64 keeps
 * stores in order with stores and loads with loads, so the columns are written before HEAD is
 * published and the reader's copies happen between its two count loads. The spec does not order plain
 * accesses against Atomics ones, so on weakly ordered CPUs (ARM64) this rests on V8's code generation:
 * `hot-window.concurrent.test.ts` is the check to run on a new platform. Plain f64 reads may tear in
 * theory; a tear can only hit a slot being rewritten, which the re-check rejects.
 *
 * The appended count is exact up to 2^53: HEAD wraps at 2^32 and HEAD_HI carries the high part with the
 * ring's odd-during-carry protocol (engine/ring/ring.ts `readCounter`). Only a reader stalled for 2^32
 * appends of one symbol between its two loads would be fooled; we accept that.
 *
 * One writer per window is a precondition, not checked. Another thread may take over writing after the
 * previous writer stopped (all writer state is in the buffer).
 */
import { engineError } from '../errors.ts';
import type { SlotViews } from '../ring/ring.ts';
import {
  RecordKind, SEQ_BYTE, SOURCE_ID_BYTE, SYMBOL_ID_BYTE, TRADE_ASK_BYTE, TRADE_BID_BYTE, TRADE_FLAGS_BYTE,
  TRADE_PRICE_BYTE, TRADE_SIZE_BYTE, TS_MICROS_BYTE,
} from '../../schemas/records.ts';
import type { HotColumns } from './hot-columns.ts';
import {
  CAPACITY_I32, DEFAULT_CAPACITY, DEFAULT_MAX_BYTES, DEFAULT_RETAIN_MICROS, ENTRY_BYTES, ENTRY_BYTES_I32, HEADER_BYTES,
  HEAD_HI_I32, HEAD_I32, HOT_LAYOUT_VERSION, HOT_MAGIC, LAYOUT_VERSION_I32, MAGIC_I32, MAX_CAPACITY, MAX_SYMBOLS,
  MIN_CAPACITY, REJECTED_BAD_TS_I32, REJECTED_OLDER_I32, REJECT_TS_F64, REJECT_VERSION_I32, RETAIN_MICROS_F64,
  SYMBOLS_I32, controlF64, controlI32, guardEntries, hotRegions, type HotRegions,
} from './layout.ts';

/** Returned by `newest`, `since` and `count` when no consistent snapshot was obtained (retry later). */
export const HOT_BUSY = -1;
/** Copy-and-re-check attempts per query before HOT_BUSY. */
export const READ_ATTEMPTS = 8;
/** Version checks of the rejected-ts seqlock per query before assuming a dead writer left it mid-write. */
const REJECT_READ_ATTEMPTS = 64;

const Q_HELD_FROM = 0;
const Q_COUNT = 1;
const Q_NEWEST = 2;
const Q_SINCE = 3;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export interface HotWindowOptions {
  /** Largest symbol id held (registry ids 1..symbols, at most 65535). Every id gets a full ring. */
  symbols: number;
  /** Entries per symbol: a power of two, 2 .. 2^30 (default 2^20 ≈ 1 M trades, 45 MiB per symbol). */
  capacityPerSymbol?: number;
  /** Logical window in µs (default 3.6e9 = one hour); > 0, Infinity = never expire. */
  retainMicros?: number;
  /** Bound on the whole buffer in bytes (default 1 GiB); a layout above it is ENGINE_ERR_MEMORY_LIMIT. */
  maxBytes?: number;
  /**
   * How many ids can actually receive trades (default `symbols`): `maxBytes` bounds that many rings. Ids that
   * never get a trade (symbols recorded in symbol-ids.json but no longer configured) keep their place in the
   * layout, but their pages are never written, so the system never commits memory for them.
   */
  activeSymbols?: number;
}

/** Per-symbol figures in `stats()` (only symbols that were ever appended to). */
export interface HotSymbolStats {
  id: number;
  /** Entries ever appended (exact up to 2^53). */
  appended: number;
  /** Entries the window answers from right now (`count`). */
  held: number;
  /** See HotColumns.heldFromMicros. */
  heldFromMicros: number;
  newestTsMicros: number;
  /** newestTs − retainMicros. */
  windowStartMicros: number;
  /** True when the whole logical window is held (heldFromMicros === windowStartMicros). */
  complete: boolean;
  /** The ring has wrapped: appended ≥ capacity. */
  wrapped: boolean;
  rejectedOutOfOrder: number;
  rejectedBadTs: number;
}

export interface HotWindowStats {
  symbols: number;
  capacityPerSymbol: number;
  maxHeldPerSymbol: number;
  retainMicros: number;
  /** Size of the shared buffer (virtual; pages are committed as symbols fill). */
  byteLength: number;
  bytesPerSymbol: number;
  bytesPerEntry: number;
  appended: number;
  held: number;
  rejectedOutOfOrder: number;
  rejectedBadTs: number;
  symbolsWithData: number;
  symbolsWrapped: number;
  /** Symbols whose heldFromMicros is later than their window start (answers need Parquet/journal fill). */
  symbolsIncomplete: number;
  perSymbol: HotSymbolStats[];
  /** Counters of THIS HotWindow instance's queries (per thread, not shared). */
  reader: { queries: number; retries: number; busy: number };
}

interface Geometry { symbols: number; capacity: number; retainMicros: number; regions: HotRegions }

function isPow2(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

function validate(sab: unknown): Geometry {
  if (!(sab instanceof SharedArrayBuffer)) {
    throw engineError('ENGINE_ERR_LAYOUT', 'hot window attach needs a SharedArrayBuffer', { got: Object.prototype.toString.call(sab) });
  }
  if (sab.byteLength < HEADER_BYTES) {
    throw engineError('ENGINE_ERR_LAYOUT', `buffer of ${sab.byteLength} bytes is shorter than a hot window header (${HEADER_BYTES})`, { byteLength: sab.byteLength });
  }
  const h = new Int32Array(sab, 0, HEADER_BYTES >> 2);
  const magic = Atomics.load(h, MAGIC_I32);
  if (magic !== HOT_MAGIC) throw engineError('ENGINE_ERR_LAYOUT', 'buffer is not a tickpipe hot window (bad magic)', { magic });
  if (h[LAYOUT_VERSION_I32] !== HOT_LAYOUT_VERSION) {
    throw engineError('ENGINE_ERR_LAYOUT', `hot window layout version ${String(h[LAYOUT_VERSION_I32])} is not ${HOT_LAYOUT_VERSION}`, { version: h[LAYOUT_VERSION_I32] ?? 0 });
  }
  const symbols = h[SYMBOLS_I32] ?? 0;
  const capacity = h[CAPACITY_I32] ?? 0;
  const entryBytes = h[ENTRY_BYTES_I32] ?? 0;
  const retainMicros = new Float64Array(sab, 0, HEADER_BYTES >> 3)[RETAIN_MICROS_F64] ?? NaN;
  const geometryOk = symbols >= 1 && symbols <= MAX_SYMBOLS && isPow2(capacity) && capacity >= MIN_CAPACITY
    && capacity <= MAX_CAPACITY && entryBytes === ENTRY_BYTES && retainMicros > 0;
  const regions = geometryOk ? hotRegions(symbols, capacity) : null;
  if (regions === null || sab.byteLength !== regions.byteLength) {
    throw engineError('ENGINE_ERR_LAYOUT', `hot window header (symbols ${symbols}, capacity ${capacity}, entry bytes ${entryBytes}, retain ${retainMicros} µs) does not match a buffer of ${sab.byteLength} bytes`,
      { symbols, capacity, entryBytes, retainMicros, byteLength: sab.byteLength });
  }
  return { symbols, capacity, retainMicros, regions };
}

/** 64-bit appended count from (HEAD_HI, HEAD): see engine/ring/ring.ts decodeCounter for the carry rule. */
function decodeAppended(hiWord: number, loWord: number): number {
  const h = hiWord >>> 0;
  const lo = loWord >>> 0;
  const hi = (h >>> 1) + ((h & 1) === 1 && lo < 0x80000000 ? 1 : 0);
  return hi * 4294967296 + lo;
}

function readAppended(i32: Int32Array, ci: number): number {
  for (;;) {
    const h = Atomics.load(i32, ci + HEAD_HI_I32);
    const lo = Atomics.load(i32, ci + HEAD_I32);
    if (Atomics.load(i32, ci + HEAD_HI_I32) === h) return decodeAppended(h, lo);
  }
}

export class HotWindow {
  readonly buffer: SharedArrayBuffer;
  /** Largest valid symbol id. */
  readonly symbols: number;
  readonly capacityPerSymbol: number;
  /** Most entries a symbol is answered from: capacity − guard. */
  readonly maxHeldPerSymbol: number;
  readonly retainMicros: number;
  readonly byteLength: number;
  readonly #i32: Int32Array;
  readonly #f64: Float64Array;
  readonly #ts: Float64Array;
  readonly #price: Float64Array;
  readonly #bid: Float64Array;
  readonly #ask: Float64Array;
  readonly #size: Uint32Array;
  readonly #flags: Uint32Array;
  readonly #seq: Uint32Array;
  readonly #src: Uint8Array;
  readonly #cap: number;
  readonly #mask: number;
  readonly #maxSlack: number;
  // results of the last query that are not in a HotColumns (count / heldFromMicros)
  #rHeldFrom = Infinity;
  #rNewest = NaN;
  // this instance's reader counters
  #queries = 0;
  #retries = 0;
  #busy = 0;

  private constructor(sab: SharedArrayBuffer, g: Geometry) {
    const r = g.regions;
    const n = g.symbols * g.capacity;
    this.buffer = sab;
    this.symbols = g.symbols;
    this.capacityPerSymbol = g.capacity;
    this.maxHeldPerSymbol = g.capacity - guardEntries(g.capacity);
    this.retainMicros = g.retainMicros;
    this.byteLength = r.byteLength;
    this.#i32 = new Int32Array(sab, 0, r.tsByte >> 2);
    this.#f64 = new Float64Array(sab, 0, r.tsByte >> 3);
    this.#ts = new Float64Array(sab, r.tsByte, n);
    this.#price = new Float64Array(sab, r.priceByte, n);
    this.#bid = new Float64Array(sab, r.bidByte, n);
    this.#ask = new Float64Array(sab, r.askByte, n);
    this.#size = new Uint32Array(sab, r.sizeByte, n);
    this.#flags = new Uint32Array(sab, r.flagsByte, n);
    this.#seq = new Uint32Array(sab, r.seqByte, n);
    this.#src = new Uint8Array(sab, r.sourceByte, n);
    this.#cap = g.capacity;
    this.#mask = g.capacity - 1;
    this.#maxSlack = this.maxHeldPerSymbol >>> 1;
  }

  /** Trades refused because the window already held them (same time, source and seq: a restart's re-delivery); writer side only. */
  duplicates = 0;

  /**
   * Allocate a window (main thread) and pass `.buffer` to the writer and the readers. Bad options:
   * ENGINE_ERR_INVALID_ARG; a layout larger than `maxBytes` (or one the host cannot allocate):
   * ENGINE_ERR_MEMORY_LIMIT, naming the bytes needed.
   */
  static create(opts: HotWindowOptions): HotWindow {
    if (!LITTLE_ENDIAN) throw engineError('ENGINE_ERR_LAYOUT', 'the hot window needs a little-endian host');
    const { symbols, capacityPerSymbol = DEFAULT_CAPACITY, retainMicros = DEFAULT_RETAIN_MICROS, maxBytes = DEFAULT_MAX_BYTES } = opts;
    if (!Number.isInteger(symbols) || symbols < 1 || symbols > MAX_SYMBOLS) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `hot window symbols (largest id) must be an integer 1..${MAX_SYMBOLS}, got ${String(symbols)}`, { symbols: Number(symbols) });
    }
    if (!isPow2(capacityPerSymbol) || capacityPerSymbol < MIN_CAPACITY || capacityPerSymbol > MAX_CAPACITY) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `hot window capacityPerSymbol must be a power of two 2..2^30, got ${String(capacityPerSymbol)}`, { capacityPerSymbol: Number(capacityPerSymbol) });
    }
    if (typeof retainMicros !== 'number' || !(retainMicros > 0)) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `hot window retainMicros must be a number of µs > 0, got ${String(retainMicros)}`, { retainMicros: Number(retainMicros) });
    }
    if (typeof maxBytes !== 'number' || !(maxBytes > 0)) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `hot window maxBytes must be a number > 0, got ${String(maxBytes)}`, { maxBytes: Number(maxBytes) });
    }
    const active = opts.activeSymbols ?? symbols;
    if (!Number.isInteger(active) || active < 1 || active > symbols) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `hot window activeSymbols must be an integer 1..${symbols}, got ${String(active)}`, { activeSymbols: Number(active) });
    }
    const regions = hotRegions(symbols, capacityPerSymbol);
    const bytes = regions.byteLength;
    const bytesPerSymbol = capacityPerSymbol * ENTRY_BYTES;
    const bounded = hotRegions(active, capacityPerSymbol).byteLength;
    if (bounded > maxBytes) {
      throw engineError('ENGINE_ERR_MEMORY_LIMIT',
        `hot window of ${active} symbols × ${capacityPerSymbol} entries needs ${fmtBytes(bounded)} (${fmtBytes(bytesPerSymbol)} per symbol), above the configured bound of ${fmtBytes(maxBytes)}: lower capacityPerSymbol or the symbol count, or raise the bound`,
        { bytes: bounded, maxBytes, symbols: active, capacityPerSymbol, bytesPerSymbol });
    }
    let sab: SharedArrayBuffer;
    try {
      sab = new SharedArrayBuffer(bytes);
    } catch (e) {
      throw engineError('ENGINE_ERR_MEMORY_LIMIT', `cannot allocate a hot window of ${fmtBytes(bytes)} (${symbols} symbols × ${capacityPerSymbol} entries)`,
        { bytes, maxBytes, symbols, capacityPerSymbol, bytesPerSymbol }, e);
    }
    const h = new Int32Array(sab, 0, HEADER_BYTES >> 2);
    const f64 = new Float64Array(sab, 0, regions.tsByte >> 3);
    for (let id = 1; id <= symbols; id++) f64[controlF64(id) + REJECT_TS_F64] = -Infinity;
    f64[RETAIN_MICROS_F64] = retainMicros;
    h[LAYOUT_VERSION_I32] = HOT_LAYOUT_VERSION;
    h[SYMBOLS_I32] = symbols;
    h[CAPACITY_I32] = capacityPerSymbol;
    h[ENTRY_BYTES_I32] = ENTRY_BYTES;
    Atomics.store(h, MAGIC_I32, HOT_MAGIC); // last: a half-initialised window never validates
    return new HotWindow(sab, validate(sab));
  }

  /** Attach to a window created elsewhere (any thread). Wrong, short or foreign buffer: ENGINE_ERR_LAYOUT. */
  static attach(sab: SharedArrayBuffer): HotWindow {
    return new HotWindow(sab, validate(sab));
  }

  // ---- writer side: ONE thread per window ------------------------------------------------------------------

  /**
   * Append one trade of symbol `id`. No allocation. Returns false (and appends nothing) when `tsMicros`
   * is older than the symbol's newest entry, or NaN/infinite, or the window already holds this trade (same
   * time, source and seq as one of the newest entries: counted in `duplicates`): counted in stats, and an out-of-order ts
   * moves heldFromMicros past it (the trade exists but the window does not hold it). size, flags and seq
   * are stored as u32, sourceId as u8. Id outside 1..symbols: ENGINE_ERR_UNKNOWN_SYMBOL.
   */
  append(id: number, tsMicros: number, price: number, bid: number, ask: number, size: number, flags: number, seq: number, sourceId: number): boolean {
    if (!(id >= 1 && id <= this.symbols) || (id | 0) !== id) this.#badId(id);
    const i32 = this.#i32;
    const ci = controlI32(id);
    const h = Atomics.load(i32, ci + HEAD_I32); // our own last publish (any previous writer's, after a handover)
    const col = (id - 1) * this.#cap;
    const mask = this.#mask;
    const ts = this.#ts;
    if (tsMicros - tsMicros !== 0) return this.#rejectBadTs(ci); // NaN, ±Infinity
    const hi = Atomics.load(i32, ci + HEAD_HI_I32);
    if (h !== 0 || hi !== 0) {
      const newest = ts[col + ((h - 1) & mask)] as number;
      if (tsMicros < newest) return this.#rejectOlder(ci, id, tsMicros);
      if (tsMicros === newest && this.#heldAtNewest(col, h, hi !== 0 ? this.#cap : Math.min(h >>> 0, this.#cap), tsMicros, seq >>> 0, sourceId & 0xff)) {
        this.duplicates++;
        return false;
      }
    }
    const k = col + (h & mask);
    ts[k] = tsMicros;
    this.#price[k] = price;
    this.#bid[k] = bid;
    this.#ask[k] = ask;
    this.#size[k] = size;
    this.#flags[k] = flags;
    this.#seq[k] = seq;
    this.#src[k] = sourceId;
    const next = (h + 1) | 0;
    if (next !== 0) {
      Atomics.store(i32, ci + HEAD_I32, next); // publish: the columns above become readable
    } else {
      // why three stores: the carry protocol of the 64-bit count (decodeAppended). Once per 2^32 appends.
      // A writer killed inside these three stores can leave the count 2^32 off (stats only: every slot
      // index uses the low word, and queries compare counts from the same word pair).
      const hw = Atomics.load(i32, ci + HEAD_HI_I32) & ~1;
      Atomics.store(i32, ci + HEAD_HI_I32, (hw + 1) | 0);
      Atomics.store(i32, ci + HEAD_I32, 0);
      Atomics.store(i32, ci + HEAD_HI_I32, (hw + 2) | 0);
    }
    return true;
  }

  /**
   * Append the TRADE record in the ring slot at absolute byte `b` of `views` (schemas/records.ts layout;
   * symbol id, ts, prices, size, flags, seq and source id are taken from the slot). Same return value as
   * `append`. A slot of another kind is ENGINE_ERR_INVALID_ARG: dispatch on `readKind` first.
   */
  appendFromSlot(views: SlotViews, b: number): boolean {
    const kind = views.u8[b];
    if (kind !== RecordKind.TRADE) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `hot window appendFromSlot needs a TRADE record (kind ${RecordKind.TRADE}), got kind ${String(kind)} at byte ${b}`, { kind: kind ?? -1, byte: b });
    }
    return this.append(
      views.u16[(b + SYMBOL_ID_BYTE) >> 1] as number,
      views.f64[(b + TS_MICROS_BYTE) >> 3] as number,
      views.f64[(b + TRADE_PRICE_BYTE) >> 3] as number,
      views.f64[(b + TRADE_BID_BYTE) >> 3] as number,
      views.f64[(b + TRADE_ASK_BYTE) >> 3] as number,
      views.u32[(b + TRADE_SIZE_BYTE) >> 2] as number,
      views.u32[(b + TRADE_FLAGS_BYTE) >> 2] as number,
      views.u32[(b + SEQ_BYTE) >> 2] as number,
      views.u8[b + SOURCE_ID_BYTE] as number,
    );
  }

  /**
   * Whether the trade (`t`, `seq`, `src`) is already among the newest entries, those stamped `t`: a
   * restarted validator re-delivers what it had forwarded but not yet made durable, and the window must not
   * hold it twice. Walks back from the newest entry while the time is `t`; a lane's sequence numbers rise, so
   * the walk ends at the first entry of the same source with a lower seq (one step in the usual case).
   */
  #heldAtNewest(col: number, h: number, held: number, t: number, seq: number, src: number): boolean {
    const ts = this.#ts;
    const sq = this.#seq;
    const sr = this.#src;
    const mask = this.#mask;
    for (let j = 1; j <= held; j++) {
      const k = col + ((h - j) & mask);
      if (ts[k] !== t) return false;
      if (sr[k] === src) {
        const s = sq[k] as number;
        if (s === seq) return true;
        if (s < seq) return false;
      }
    }
    return false;
  }

  #rejectBadTs(ci: number): false {
    const i32 = this.#i32;
    Atomics.store(i32, ci + REJECTED_BAD_TS_I32, (Atomics.load(i32, ci + REJECTED_BAD_TS_I32) + 1) | 0);
    return false;
  }

  #rejectOlder(ci: number, id: number, tsMicros: number): false {
    const i32 = this.#i32;
    const f64 = this.#f64;
    Atomics.store(i32, ci + REJECTED_OLDER_I32, (Atomics.load(i32, ci + REJECTED_OLDER_I32) + 1) | 0);
    const cf = controlF64(id) + REJECT_TS_F64;
    if (tsMicros > (f64[cf] as number)) {
      // why a seqlock: an f64 cannot be stored atomically; readers retry on an odd or changed version.
      // `| 1`: stays odd even if a dead writer left it odd (then we finish its write).
      const v = Atomics.load(i32, ci + REJECT_VERSION_I32) | 1;
      Atomics.store(i32, ci + REJECT_VERSION_I32, v);
      f64[cf] = tsMicros;
      Atomics.store(i32, ci + REJECT_VERSION_I32, (v + 1) | 0);
    }
    return false;
  }

  // ---- reader side: any thread ----------------------------------------------------------------------------

  /**
   * Copy the newest min(n, out.capacity) held rows of symbol `id` into `out`, oldest first. Returns the
   * row count (also `out.length`), or HOT_BUSY. Fewer rows than asked means the logical window holds
   * fewer (see heldFromMicros); `out.more` says whether older held rows were left out. No allocation.
   */
  newest(id: number, n: number, out: HotColumns): number {
    if (!(id >= 1 && id <= this.symbols) || (id | 0) !== id) this.#badId(id);
    if ((n >>> 0) !== n) throw engineError('ENGINE_ERR_INVALID_ARG', `newest: n must be an integer >= 0, got ${String(n)}`, { n: Number(n) });
    return this.#query(id, Q_NEWEST, n < out.capacity ? n : out.capacity, 0, out);
  }

  /**
   * Copy the held rows of symbol `id` with ts ≥ sinceMicros (inclusive: same-ts trades are all
   * returned), oldest first, at most min(limit, out.capacity) of them: the first ones (page forward
   * from the last row's ts; `out.more` says rows were left out after it). Rows start at
   * max(sinceMicros, out.heldFromMicros): when sinceMicros < out.heldFromMicros, the trades in
   * [sinceMicros, heldFromMicros) are not in the window. Returns the row count, or HOT_BUSY. No allocation.
   * Binary search from the newest end (cheap for "since a moment ago").
   */
  since(id: number, sinceMicros: number, limit: number, out: HotColumns): number {
    if (!(id >= 1 && id <= this.symbols) || (id | 0) !== id) this.#badId(id);
    if (typeof sinceMicros !== 'number' || Number.isNaN(sinceMicros)) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `since: sinceMicros must be a number of µs, got ${String(sinceMicros)}`);
    }
    if ((limit >>> 0) !== limit) throw engineError('ENGINE_ERR_INVALID_ARG', `since: limit must be an integer >= 0, got ${String(limit)}`, { limit: Number(limit) });
    return this.#query(id, Q_SINCE, limit < out.capacity ? limit : out.capacity, sinceMicros, out);
  }

  /** Rows the window answers from for symbol `id` right now (ts ≥ heldFromMicros), or HOT_BUSY. */
  count(id: number): number {
    if (!(id >= 1 && id <= this.symbols) || (id | 0) !== id) this.#badId(id);
    return this.#query(id, Q_COUNT, 0, 0, null);
  }

  /**
   * The window holds every trade of symbol `id` with ts ≥ this (see the file comment); +Infinity when it
   * holds nothing (nothing appended yet, or busy). Ticks older than this must come from Parquet/journal.
   */
  heldFromMicros(id: number): number {
    if (!(id >= 1 && id <= this.symbols) || (id | 0) !== id) this.#badId(id);
    return this.#query(id, Q_HELD_FROM, 0, 0, null) === HOT_BUSY ? Infinity : this.#rHeldFrom;
  }

  /** Entries ever appended to symbol `id` (exact up to 2^53): a position for replay and progress. */
  appended(id: number): number {
    if (!(id >= 1 && id <= this.symbols) || (id | 0) !== id) this.#badId(id);
    return readAppended(this.#i32, controlI32(id));
  }

  /** Memory, fill and completeness per symbol, plus this instance's reader counters. Allocates: cold path. */
  stats(): HotWindowStats {
    const i32 = this.#i32;
    const perSymbol: HotSymbolStats[] = [];
    let appended = 0, held = 0, rejectedOutOfOrder = 0, rejectedBadTs = 0, symbolsWrapped = 0, symbolsIncomplete = 0;
    for (let id = 1; id <= this.symbols; id++) {
      const ci = controlI32(id);
      const total = readAppended(i32, ci);
      const rOlder = Atomics.load(i32, ci + REJECTED_OLDER_I32) >>> 0;
      const rBad = Atomics.load(i32, ci + REJECTED_BAD_TS_I32) >>> 0;
      if (total === 0 && rOlder === 0 && rBad === 0) continue;
      const c = this.#query(id, Q_COUNT, 0, 0, null);
      const heldFrom = c === HOT_BUSY ? Infinity : this.#rHeldFrom;
      const newest = c === HOT_BUSY ? NaN : this.#rNewest;
      const windowStart = newest - this.retainMicros;
      const s: HotSymbolStats = {
        id, appended: total, held: c === HOT_BUSY ? 0 : c, heldFromMicros: heldFrom, newestTsMicros: newest, windowStartMicros: windowStart,
        complete: heldFrom === windowStart, wrapped: total >= this.#cap, rejectedOutOfOrder: rOlder, rejectedBadTs: rBad,
      };
      perSymbol.push(s);
      appended += total; held += s.held; rejectedOutOfOrder += rOlder; rejectedBadTs += rBad;
      if (s.wrapped) symbolsWrapped++;
      if (total > 0 && !s.complete) symbolsIncomplete++;
    }
    return {
      symbols: this.symbols, capacityPerSymbol: this.#cap, maxHeldPerSymbol: this.maxHeldPerSymbol, retainMicros: this.retainMicros,
      byteLength: this.byteLength, bytesPerSymbol: this.#cap * ENTRY_BYTES, bytesPerEntry: ENTRY_BYTES,
      appended, held, rejectedOutOfOrder, rejectedBadTs, symbolsWithData: perSymbol.length, symbolsWrapped, symbolsIncomplete, perSymbol,
      reader: { queries: this.#queries, retries: this.#retries, busy: this.#busy },
    };
  }

  /**
   * Every query: snapshot the appended count, derive the logical window, search, copy, re-check (see the
   * file comment). Every ts probe and copied index lies in [low, total), so checking `low` checks them all.
   */
  #query(id: number, mode: number, n: number, sinceMicros: number, out: HotColumns | null): number {
    const i32 = this.#i32;
    const ci = controlI32(id);
    const col = (id - 1) * this.#cap;
    const mask = this.#mask;
    const ts = this.#ts;
    let slack = 0;
    this.#queries++;
    for (let attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
      const total = readAppended(i32, ci);
      if (total === 0) return this.#answer(out, id, 0, Infinity, NaN, false, 0);
      const maxHeld = this.maxHeldPerSymbol - slack;
      const low = total > maxHeld ? total - maxHeld : 0; // oldest entry this attempt may touch
      const newestTs = ts[col + ((total - 1) & mask)] as number;
      const oldestTs = ts[col + (low & mask)] as number;
      // completeness bound: see the file comment
      let heldFrom = low === 0 ? oldestTs : oldestTs + 1;
      const rejectedTs = this.#rejectedTs(ci, id);
      if (rejectedTs + 1 > heldFrom) heldFrom = rejectedTs + 1;
      const windowStart = newestTs - this.retainMicros;
      if (windowStart > heldFrom) heldFrom = windowStart;

      let start = total;
      let end = total;
      let more = false;
      let result = 0;
      if (mode === Q_COUNT) {
        result = total - this.#lowerBound(col, heldFrom, low, total);
      } else if (mode === Q_NEWEST) {
        if (n === 0) {
          more = newestTs >= heldFrom;
        } else {
          start = total - n;
          if (start > low && (ts[col + (start & mask)] as number) >= heldFrom) {
            more = (ts[col + ((start - 1) & mask)] as number) >= heldFrom;
          } else {
            start = this.#lowerBound(col, heldFrom, start > low ? start : low, total);
          }
        }
      } else if (mode === Q_SINCE) {
        start = this.#lowerBoundFromEnd(col, sinceMicros > heldFrom ? sinceMicros : heldFrom, low, total);
        end = total - start > n ? start + n : total;
        more = end < total;
      }
      if (out !== null && end > start) this.#copy(col, start, end - start, out);

      const total2 = readAppended(i32, ci);
      if (low > total2 - this.#cap) {
        // nothing at or above `low` was rewritten while we read: the answer is one consistent snapshot
        return this.#answer(out, id, mode === Q_COUNT ? result : end - start, heldFrom, newestTs, more, end - start);
      }
      // The writer lapped the oldest entry we touched: retry, leaving more of the old end alone.
      this.#retries++;
      slack += 2 * (total2 - total) + 1;
      if (slack > this.#maxSlack) slack = this.#maxSlack;
    }
    this.#busy++;
    this.#answer(out, id, 0, Infinity, NaN, false, 0);
    return HOT_BUSY;
  }

  #answer(out: HotColumns | null, id: number, result: number, heldFrom: number, newestTs: number, more: boolean, rows: number): number {
    this.#rHeldFrom = heldFrom;
    this.#rNewest = newestTs;
    if (out !== null) {
      out.length = rows;
      out.symbolId = id;
      out.heldFromMicros = heldFrom;
      out.newestTsMicros = newestTs;
      out.more = more;
    }
    return result;
  }

  /** Largest ts rejected as out of order (−Infinity: none); +Infinity if its seqlock stays mid-write. */
  #rejectedTs(ci: number, id: number): number {
    const i32 = this.#i32;
    const cf = controlF64(id) + REJECT_TS_F64;
    for (let a = 0; a < REJECT_READ_ATTEMPTS; a++) {
      const v = Atomics.load(i32, ci + REJECT_VERSION_I32);
      if ((v & 1) !== 0) continue;
      const x = this.#f64[cf] as number;
      if (Atomics.load(i32, ci + REJECT_VERSION_I32) === v) return x;
    }
    return Infinity; // a writer died mid-write: claim nothing rather than something false
  }

  /** First entry index in [lo, hi) with ts ≥ x (hi if none). ts is non-decreasing over [lo, hi). */
  #lowerBound(col: number, x: number, lo: number, hi: number): number {
    const ts = this.#ts;
    const mask = this.#mask;
    while (lo < hi) {
      const mid = lo + ((hi - lo) >>> 1); // hi − lo < 2^31
      if ((ts[col + (mid & mask)] as number) < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Same as #lowerBound, galloping back from `hi` first: O(log distance from the newest) probes. */
  #lowerBoundFromEnd(col: number, x: number, lo: number, hi: number): number {
    const ts = this.#ts;
    const mask = this.#mask;
    let r = hi; // every entry in [r, hi) has ts ≥ x
    let step = 1;
    for (;;) {
      const p = r - step;
      if (p <= lo) return this.#lowerBound(col, x, lo, r);
      if ((ts[col + (p & mask)] as number) < x) return this.#lowerBound(col, x, p + 1, r);
      r = p;
      step *= 2;
    }
  }

  /** Copy entries [start, start + count) of a symbol into out[0, count): at most two runs (ring wrap). */
  #copy(col: number, start: number, count: number, out: HotColumns): void {
    const s = start & this.#mask;
    const first = count < this.#cap - s ? count : this.#cap - s;
    this.#copyRun(col + s, 0, first, out);
    if (first < count) this.#copyRun(col, first, count - first, out);
  }

  #copyRun(from: number, to: number, len: number, out: HotColumns): void {
    // Plain loops: no subarray views (they allocate), and for the usual 100 rows faster than set().
    let a: Float64Array = this.#ts, d: Float64Array = out.tsMicros;
    for (let i = 0; i < len; i++) d[to + i] = a[from + i] as number;
    a = this.#price; d = out.price;
    for (let i = 0; i < len; i++) d[to + i] = a[from + i] as number;
    a = this.#bid; d = out.bid;
    for (let i = 0; i < len; i++) d[to + i] = a[from + i] as number;
    a = this.#ask; d = out.ask;
    for (let i = 0; i < len; i++) d[to + i] = a[from + i] as number;
    let u: Uint32Array = this.#size, e: Uint32Array = out.size;
    for (let i = 0; i < len; i++) e[to + i] = u[from + i] as number;
    u = this.#flags; e = out.flags;
    for (let i = 0; i < len; i++) e[to + i] = u[from + i] as number;
    u = this.#seq; e = out.seq;
    for (let i = 0; i < len; i++) e[to + i] = u[from + i] as number;
    const b = this.#src, f = out.sourceId;
    for (let i = 0; i < len; i++) f[to + i] = b[from + i] as number;
  }

  #badId(id: number): never {
    throw engineError('ENGINE_ERR_UNKNOWN_SYMBOL', `symbol id ${String(id)} is outside the hot window (1..${this.symbols})`, { id: Number(id), symbols: this.symbols });
  }
}

/**
 * Test hook: a fresh window whose every symbol starts with `appended` entries already counted (e.g. just
 * below 2^31 or 2^32), to exercise the count's wrap and carry without appending billions of entries.
 * The pretend entries are zeros (ts 0): append at least `capacityPerSymbol` entries before reading.
 */
export function createHotWindowAtCount(opts: HotWindowOptions, appended: number): HotWindow {
  if (!Number.isInteger(appended) || appended < 0 || appended > Number.MAX_SAFE_INTEGER) {
    throw engineError('ENGINE_ERR_INVALID_ARG', `appended must be a safe integer >= 0, got ${String(appended)}`);
  }
  const w = HotWindow.create(opts);
  const i32 = new Int32Array(w.buffer, 0, controlI32(w.symbols + 1));
  for (let id = 1; id <= w.symbols; id++) {
    const ci = controlI32(id);
    Atomics.store(i32, ci + HEAD_HI_I32, (Math.floor(appended / 4294967296) * 2) | 0);
    Atomics.store(i32, ci + HEAD_I32, appended % 4294967296 | 0);
  }
  return w;
}

function fmtBytes(n: number): string {
  if (n >= 1024 * 1024 * 1024) return `${(n / (1024 * 1024 * 1024)).toFixed(2)} GiB`;
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}
