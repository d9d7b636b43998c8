/**
 * The latest table: last trade, top of book and counters per symbol id, in one SharedArrayBuffer,
 * guarded by a per-slot seqlock (DESIGN.md §2). One writer per slot (the validator), readers on any
 * thread (the uWS thread answering `/api/v1/ticks/latest`) without locks and without allocation.
 *
 * Layout: `layout.ts`. Ids come from the symbol registry (engine/symbols); this table only checks that
 * an id is in 1..capacity (else ENGINE_ERR_UNKNOWN_SYMBOL).
 *
 * ## The seqlock, and why it is safe in JavaScript
 *
 * Writer (single, per slot):   v = version | 1; Atomics.store(version, v)      // odd: write in progress
 *                              plain Float64Array writes of the fields
 *                              Atomics.store(version, v + 1)                    // even: stable
 * Reader (any thread):         v1 = Atomics.load(version); odd -> retry
 *                              copy every field with plain Float64Array reads
 *                              v2 = Atomics.load(version); v2 !== v1 -> retry
 *
 * why: a reader can run while the writer is half-way through a slot, so its plain reads may see some
 * fields of write n and some of write n+1, and by the ECMAScript memory model a plain (non-Atomics)
 * access to shared memory may even tear (a Float64 element is not guaranteed to be read in one piece;
 * Atomics cannot operate on Float64Array at all). The seqlock makes that harmless instead of impossible:
 * - Any write that overlaps the copy changes the version: it was odd at v1 (rejected), or it stored an
 *   odd value (then an even one) between v1 and v2, so v2 !== v1 (rejected). Only a copy with no write
 *   overlapping it is accepted, and that copy is one write's complete record.
 * - Atomics.load/store are sequentially consistent, and V8's optimising compiler treats Atomics
 *   operations as barriers in its effect chain (it does not hoist, sink or merge typed-array accesses
 *   across them), so the plain reads stay between the two version loads and the writer's plain writes
 *   between its two version stores. On x86-64 (our deployment target) the CPU keeps loads in order with
 *   loads and stores in order with stores (TSO), and a seq-cst Atomics.store is a locked `xchg`, so the
 *   machine keeps that order too.
 * - Caveat: the JS memory model itself does not order plain accesses against seq-cst ones (there are no
 *   fences in JS), so on weakly ordered CPUs (ARM64) this rests on V8's code generation rather than on
 *   the spec. `seqlock.test.ts` (a real writer thread hammering one slot while this thread reads and
 *   checks every snapshot) is the check to run on any new platform.
 * - The data are therefore read only from typed arrays and never assumed atomic, a snapshot is only
 *   trusted after the second version check, and the caller gets a copy (never a view into the SAB).
 * - One writer per slot is a precondition, not checked on the hot path: two writers would interleave
 *   their odd/even stores and a reader could accept a mixed record.
 * - The version is an int32 that wraps; a reader stalled between its two loads for exactly 2^31 writes
 *   of one slot (minutes of writes back to back) would be fooled. We accept that.
 *
 * ## Bounded retries, "busy" as a return value
 *
 * `read` retries at most `maxAttempts` times (default READ_ATTEMPTS; a check of an odd version counts as
 * one) and then returns false: "busy". It never spins forever, which matters because a writer thread that
 * dies mid-write leaves the version odd for good (the next writer to attach recovers it). At the real
 * write rate (≤ 100k writes/s per symbol, a few tens of ns each) a reader essentially never sees busy;
 * callers that must answer something (the API) use `readJson`, which retries for longer and then throws
 * ENGINE_ERR_TIMEOUT (a writer stuck mid-write is a lost worker, not a normal state).
 */
import { engineError } from '../errors.ts';
import {
  CAPACITY_I32, FIELD_COUNT, FIELD_COUNT_I32, F_ASK, F_ASK_SIZE, F_BID, F_BID_SIZE, F_LAST_TS_MICROS, F_QUOTE_COUNT,
  F_QUOTE_TS_MICROS, F_TRADE_COUNT, F_TRADE_PRICE, F_TRADE_SEQ, F_TRADE_SIDE, F_TRADE_SIZE, F_TRADE_TS_MICROS,
  F_UPDATE_COUNT, FIELDS_F64, HEADER_BYTES, HEADER_F64, HEADER_I32, LATEST_LAYOUT_VERSION, LATEST_MAGIC,
  LAYOUT_VERSION_I32, MAGIC_I32, MAX_CAPACITY, NAN_INIT_FIELDS, SLOT_BYTES, SLOT_BYTES_I32, SLOT_F64, SLOT_I32,
  latestBytes,
} from './layout.ts';

/** Default bound on version checks per `read` (odd versions and failed re-checks both count). */
export const READ_ATTEMPTS = 256;
/** `readJson` gives up after this many `read` rounds (about READ_ATTEMPTS × this version checks). */
export const READ_JSON_ROUNDS = 64;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
if (FIELD_COUNT !== 14) throw engineError('ENGINE_ERR_INTERNAL', `readRaw's unrolled copy expects 14 fields, layout has ${FIELD_COUNT}`);

/** A reusable destination for `read`: allocate one per reader, pass it to every call. */
export class LatestSnapshot {
  /** Symbol id the snapshot belongs to (set by `read`). */
  id = 0;
  /** Seqlock version the snapshot was copied at (even). */
  version = 0;
  tradeTsMicros = NaN;
  price = NaN;
  size = 0;
  /** Side: 0 unknown, 1 buy, 2 sell. */
  side = 0;
  seq = 0;
  quoteTsMicros = NaN;
  bid = NaN;
  bidSize = 0;
  ask = NaN;
  askSize = 0;
  tradeCount = 0;
  quoteCount = 0;
  /** 0 when the slot was never written. */
  updateCount = 0;
  lastTsMicros = NaN;
}

/** JSON shape of one symbol's latest state (the `/api/v1/ticks/latest` entry). NaN fields become null. */
export interface LatestJson {
  symbol: string;
  /** Last trade time, ISO 8601 UTC with 6 fractional digits. */
  ts: string | null;
  ts_us: number | null;
  ts_ms: number | null;
  price: number | null;
  size: number | null;
  side: 'buy' | 'sell' | null;
  seq: number | null;
  bid: number | null;
  bid_size: number | null;
  ask: number | null;
  ask_size: number | null;
  quote_ts: string | null;
  trade_count: number;
  quote_count: number;
  updates: number;
  last_update_ts: string | null;
}

interface Validated { capacity: number }

function validate(sab: unknown): Validated {
  if (!(sab instanceof SharedArrayBuffer)) {
    throw engineError('ENGINE_ERR_LAYOUT', 'latest table attach needs a SharedArrayBuffer', { got: Object.prototype.toString.call(sab) });
  }
  if (sab.byteLength < HEADER_BYTES) {
    throw engineError('ENGINE_ERR_LAYOUT', `buffer of ${sab.byteLength} bytes is shorter than a latest table header (${HEADER_BYTES})`, { byteLength: sab.byteLength });
  }
  const h = new Int32Array(sab, 0, HEADER_I32);
  const magic = Atomics.load(h, MAGIC_I32);
  if (magic !== LATEST_MAGIC) throw engineError('ENGINE_ERR_LAYOUT', 'buffer is not a tickpipe latest table (bad magic)', { magic });
  if (h[LAYOUT_VERSION_I32] !== LATEST_LAYOUT_VERSION) {
    throw engineError('ENGINE_ERR_LAYOUT', `latest table layout version ${String(h[LAYOUT_VERSION_I32])} is not ${LATEST_LAYOUT_VERSION}`);
  }
  const capacity = h[CAPACITY_I32] ?? 0;
  const slotBytes = h[SLOT_BYTES_I32] ?? 0;
  const fields = h[FIELD_COUNT_I32] ?? 0;
  if (capacity < 1 || capacity > MAX_CAPACITY || slotBytes !== SLOT_BYTES || fields !== FIELD_COUNT || sab.byteLength !== latestBytes(capacity)) {
    throw engineError('ENGINE_ERR_LAYOUT', `latest table header (capacity ${capacity}, slot bytes ${slotBytes}, fields ${fields}) does not match a buffer of ${sab.byteLength} bytes`, { capacity, slotBytes, fields, byteLength: sab.byteLength });
  }
  return { capacity };
}

/** ISO 8601 UTC with microseconds (`2025-11-11T14:30:00.123456Z`), or null for NaN. Allocates. */
export function microsToIso(us: number): string | null {
  if (!Number.isFinite(us)) return null;
  const ms = Math.floor(us / 1000);
  const sub = Math.floor(us - ms * 1000); // 0..999
  return `${new Date(ms).toISOString().slice(0, 23)}${String(sub).padStart(3, '0')}Z`;
}

const num = (x: number): number | null => (Number.isNaN(x) ? null : x);

export class LatestTable {
  readonly buffer: SharedArrayBuffer;
  /** Largest valid id. */
  readonly capacity: number;
  readonly #i32: Int32Array;
  readonly #f64: Float64Array;
  readonly #scratch = new LatestSnapshot(); // readJson's; never handed out

  private constructor(sab: SharedArrayBuffer, v: Validated) {
    this.buffer = sab;
    this.capacity = v.capacity;
    this.#i32 = new Int32Array(sab);
    this.#f64 = new Float64Array(sab);
  }

  /** Allocate a table for ids 1..capacity (main thread); pass `.buffer` to writers and readers. */
  static create(capacity: number): LatestTable {
    if (!LITTLE_ENDIAN) throw engineError('ENGINE_ERR_LAYOUT', 'the latest table needs a little-endian host');
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_CAPACITY) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `latest table capacity must be an integer 1..${MAX_CAPACITY}, got ${String(capacity)}`);
    }
    const sab = new SharedArrayBuffer(latestBytes(capacity));
    const f64 = new Float64Array(sab);
    for (let id = 1; id <= capacity; id++) {
      const b = HEADER_F64 + id * SLOT_F64 + FIELDS_F64;
      for (const f of NAN_INIT_FIELDS) f64[b + f] = NaN;
    }
    const h = new Int32Array(sab, 0, HEADER_I32);
    h[LAYOUT_VERSION_I32] = LATEST_LAYOUT_VERSION;
    h[CAPACITY_I32] = capacity;
    h[SLOT_BYTES_I32] = SLOT_BYTES;
    h[FIELD_COUNT_I32] = FIELD_COUNT;
    Atomics.store(h, MAGIC_I32, LATEST_MAGIC); // last: publishes the initialised slots too
    return new LatestTable(sab, validate(sab));
  }

  /** Attach to a table created elsewhere. Wrong, short or foreign buffer: ENGINE_ERR_LAYOUT. */
  static attach(sab: SharedArrayBuffer): LatestTable {
    return new LatestTable(sab, validate(sab));
  }

  // ---- writer side: one thread per slot ---------------------------------------------------------------

  /** Record a trade. `side`: 0 unknown, 1 buy (at the ask), 2 sell (at the bid). */
  writeTrade(id: number, tsMicros: number, price: number, size: number, side: number, seq: number): void {
    if (!(id >= 1 && id <= this.capacity) || (id | 0) !== id) this.#badId(id);
    const i32 = this.#i32;
    const f64 = this.#f64;
    const vi = HEADER_I32 + id * SLOT_I32;
    const b = HEADER_F64 + id * SLOT_F64 + FIELDS_F64;
    // `| 1`: odd even if a writer died mid-write and left the version odd (then we stay odd and finish).
    const v = Atomics.load(i32, vi) | 1;
    Atomics.store(i32, vi, v);
    f64[b + F_TRADE_TS_MICROS] = tsMicros;
    f64[b + F_TRADE_PRICE] = price;
    f64[b + F_TRADE_SIZE] = size;
    f64[b + F_TRADE_SIDE] = side;
    f64[b + F_TRADE_SEQ] = seq;
    f64[b + F_TRADE_COUNT] = (f64[b + F_TRADE_COUNT] as number) + 1;
    f64[b + F_UPDATE_COUNT] = (f64[b + F_UPDATE_COUNT] as number) + 1;
    f64[b + F_LAST_TS_MICROS] = tsMicros;
    Atomics.store(i32, vi, (v + 1) | 0); // int32 wrap keeps parity: 2^32 is even
  }

  /** Record a top-of-book change. NaN bid/ask mean unknown. */
  writeQuote(id: number, tsMicros: number, bid: number, bidSize: number, ask: number, askSize: number): void {
    if (!(id >= 1 && id <= this.capacity) || (id | 0) !== id) this.#badId(id);
    const i32 = this.#i32;
    const f64 = this.#f64;
    const vi = HEADER_I32 + id * SLOT_I32;
    const b = HEADER_F64 + id * SLOT_F64 + FIELDS_F64;
    const v = Atomics.load(i32, vi) | 1;
    Atomics.store(i32, vi, v);
    f64[b + F_QUOTE_TS_MICROS] = tsMicros;
    f64[b + F_BID] = bid;
    f64[b + F_BID_SIZE] = bidSize;
    f64[b + F_ASK] = ask;
    f64[b + F_ASK_SIZE] = askSize;
    f64[b + F_QUOTE_COUNT] = (f64[b + F_QUOTE_COUNT] as number) + 1;
    f64[b + F_UPDATE_COUNT] = (f64[b + F_UPDATE_COUNT] as number) + 1;
    f64[b + F_LAST_TS_MICROS] = tsMicros;
    Atomics.store(i32, vi, (v + 1) | 0);
  }

  /**
   * A trade with the quote in force (a Sierra tick record), in one seqlock section so readers never see
   * the trade without its quote. The quote part is skipped when bid and ask are both NaN; the quote
   * count moves only when bid, ask or a size changed (a tick file repeats the quote on every trade).
   */
  writeTick(id: number, tsMicros: number, price: number, size: number, side: number, seq: number, bid: number, bidSize: number, ask: number, askSize: number): void {
    if (!(id >= 1 && id <= this.capacity) || (id | 0) !== id) this.#badId(id);
    const i32 = this.#i32;
    const f64 = this.#f64;
    const vi = HEADER_I32 + id * SLOT_I32;
    const b = HEADER_F64 + id * SLOT_F64 + FIELDS_F64;
    const v = Atomics.load(i32, vi) | 1;
    Atomics.store(i32, vi, v);
    f64[b + F_TRADE_TS_MICROS] = tsMicros;
    f64[b + F_TRADE_PRICE] = price;
    f64[b + F_TRADE_SIZE] = size;
    f64[b + F_TRADE_SIDE] = side;
    f64[b + F_TRADE_SEQ] = seq;
    f64[b + F_TRADE_COUNT] = (f64[b + F_TRADE_COUNT] as number) + 1;
    if (bid === bid || ask === ask) { // not both NaN
      // Only this thread writes the slot, so reading our own earlier writes back is race-free.
      if (f64[b + F_BID] !== bid || f64[b + F_ASK] !== ask || f64[b + F_BID_SIZE] !== bidSize || f64[b + F_ASK_SIZE] !== askSize) {
        f64[b + F_QUOTE_COUNT] = (f64[b + F_QUOTE_COUNT] as number) + 1;
      }
      f64[b + F_QUOTE_TS_MICROS] = tsMicros;
      f64[b + F_BID] = bid;
      f64[b + F_BID_SIZE] = bidSize;
      f64[b + F_ASK] = ask;
      f64[b + F_ASK_SIZE] = askSize;
    }
    f64[b + F_UPDATE_COUNT] = (f64[b + F_UPDATE_COUNT] as number) + 1;
    f64[b + F_LAST_TS_MICROS] = tsMicros;
    Atomics.store(i32, vi, (v + 1) | 0);
  }

  // ---- reader side: any thread ------------------------------------------------------------------------

  /**
   * Copy a consistent snapshot of `id` into `out` (reused; no allocation). Returns false when no
   * consistent copy was obtained within `maxAttempts` version checks ("busy": retry later); `out` may
   * then hold a torn mix and must not be used. A slot never written reads as true with
   * `out.updateCount === 0` and NaN prices. Id outside 1..capacity: ENGINE_ERR_UNKNOWN_SYMBOL.
   */
  read(id: number, out: LatestSnapshot, maxAttempts: number = READ_ATTEMPTS): boolean {
    if (!(id >= 1 && id <= this.capacity) || (id | 0) !== id) this.#badId(id);
    const i32 = this.#i32;
    const f64 = this.#f64;
    const vi = HEADER_I32 + id * SLOT_I32;
    const b = HEADER_F64 + id * SLOT_F64 + FIELDS_F64;
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      const v1 = Atomics.load(i32, vi);
      if ((v1 & 1) !== 0) continue; // a write is in progress
      out.tradeTsMicros = f64[b + F_TRADE_TS_MICROS] as number;
      out.price = f64[b + F_TRADE_PRICE] as number;
      out.size = f64[b + F_TRADE_SIZE] as number;
      out.side = f64[b + F_TRADE_SIDE] as number;
      out.seq = f64[b + F_TRADE_SEQ] as number;
      out.quoteTsMicros = f64[b + F_QUOTE_TS_MICROS] as number;
      out.bid = f64[b + F_BID] as number;
      out.bidSize = f64[b + F_BID_SIZE] as number;
      out.ask = f64[b + F_ASK] as number;
      out.askSize = f64[b + F_ASK_SIZE] as number;
      out.tradeCount = f64[b + F_TRADE_COUNT] as number;
      out.quoteCount = f64[b + F_QUOTE_COUNT] as number;
      out.updateCount = f64[b + F_UPDATE_COUNT] as number;
      out.lastTsMicros = f64[b + F_LAST_TS_MICROS] as number;
      if (Atomics.load(i32, vi) === v1) { // no write overlapped the copy
        out.id = id;
        out.version = v1;
        return true;
      }
    }
    return false;
  }

  /**
   * Like `read`, into a Float64Array of at least FIELD_COUNT elements laid out by the `F_*` indices of
   * layout.ts (e.g. to hand a snapshot to another thread or encoder without an object). Same return value.
   */
  readRaw(id: number, out: Float64Array, maxAttempts: number = READ_ATTEMPTS): boolean {
    if (!(id >= 1 && id <= this.capacity) || (id | 0) !== id) this.#badId(id);
    if (out.length < FIELD_COUNT) throw engineError('ENGINE_ERR_INVALID_ARG', `readRaw needs a Float64Array of at least ${FIELD_COUNT} elements, got ${out.length}`);
    const i32 = this.#i32;
    const f64 = this.#f64;
    const vi = HEADER_I32 + id * SLOT_I32;
    const b = HEADER_F64 + id * SLOT_F64 + FIELDS_F64;
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      const v1 = Atomics.load(i32, vi);
      if ((v1 & 1) !== 0) continue;
      // unrolled (14 fields, checked at module load): no loop, fewer bounds checks
      out[0] = f64[b] as number; out[1] = f64[b + 1] as number; out[2] = f64[b + 2] as number;
      out[3] = f64[b + 3] as number; out[4] = f64[b + 4] as number; out[5] = f64[b + 5] as number;
      out[6] = f64[b + 6] as number; out[7] = f64[b + 7] as number; out[8] = f64[b + 8] as number;
      out[9] = f64[b + 9] as number; out[10] = f64[b + 10] as number; out[11] = f64[b + 11] as number;
      out[12] = f64[b + 12] as number; out[13] = f64[b + 13] as number;
      if (Atomics.load(i32, vi) === v1) return true;
    }
    return false;
  }

  /**
   * The latest state of `id` as a JSON-ready object under the name `symbol`, or null when the slot was
   * never written. Allocates: for the API, not for the hot path. A slot that stays busy for
   * READ_JSON_ROUNDS reads (a writer that died mid-write) is ENGINE_ERR_TIMEOUT.
   */
  readJson(id: number, symbol: string): LatestJson | null {
    const s = this.#scratch;
    let ok = false;
    for (let round = 0; round < READ_JSON_ROUNDS && !ok; round++) ok = this.read(id, s);
    if (!ok) {
      throw engineError('ENGINE_ERR_TIMEOUT', `latest slot of ${symbol} (id ${id}) stayed mid-write; its writer may have died`, { symbol, id });
    }
    if (s.updateCount === 0) return null;
    const hasTrade = !Number.isNaN(s.price);
    return {
      symbol,
      ts: microsToIso(s.tradeTsMicros),
      ts_us: num(s.tradeTsMicros),
      ts_ms: Number.isNaN(s.tradeTsMicros) ? null : Math.floor(s.tradeTsMicros / 1000),
      price: num(s.price),
      size: hasTrade ? s.size : null,
      side: s.side === 1 ? 'buy' : s.side === 2 ? 'sell' : null,
      seq: hasTrade ? s.seq : null,
      bid: num(s.bid),
      bid_size: Number.isNaN(s.bid) ? null : s.bidSize,
      ask: num(s.ask),
      ask_size: Number.isNaN(s.ask) ? null : s.askSize,
      quote_ts: microsToIso(s.quoteTsMicros),
      trade_count: s.tradeCount,
      quote_count: s.quoteCount,
      updates: s.updateCount,
      last_update_ts: microsToIso(s.lastTsMicros),
    };
  }

  #badId(id: number): never {
    throw engineError('ENGINE_ERR_UNKNOWN_SYMBOL', `symbol id ${String(id)} is outside the latest table (1..${this.capacity})`, { id: Number(id), capacity: this.capacity });
  }
}
