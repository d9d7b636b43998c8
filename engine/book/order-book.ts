/**
 * Price-level order book built from Sierra Chart market depth commands (file records or ring slots).
 *
 * Semantics (DESIGN.md §5):
 * - CLEAR_BOOK empties both sides. ADD_* and MODIFY_* set a level (an ADD of an existing level overwrites
 *   it, a MODIFY of a missing level inserts it); quantity 0 deletes the level. DELETE_* removes a level
 *   (deleting a missing level is counted, not an error). NONE does nothing.
 * - Batches are atomic: commands are staged and applied only when the record flagged end-of-batch
 *   arrives (that record included), so a reader never sees a half-built book. Commands after the last
 *   end-of-batch record of a file stay staged, not visible (`stagedRecords` says how many), until their
 *   end-of-batch record arrives. `version` goes up by one per applied batch. Batches sharing a timestamp
 *   are applied in arrival (file) order.
 * - Nothing is silently dropped: a crossed or locked book (best bid >= best ask) is flagged (`crossed`,
 *   `stats.crossedBatches`); levels at a price <= 0 are kept and counted (`invalidLevels`,
 *   `stats.invalidPriceCommands`). A non-finite price cannot be placed on a price ladder: such a command
 *   is counted (`stats.invalidPriceCommands`, `stats.unplacedCommands`) and not applied. A batch that
 *   never ends would grow without bound: past `maxStagedRecords` it is applied and counted
 *   (`stats.forcedBatches`).
 *
 * Levels are keyed by integer ticks (`Math.round(price / tickSize)`), never by float prices; the f64
 * price of the last command at that level is kept for output. Each side is a sorted struct of typed
 * arrays ordered worst → best, so the best level is the last element: updates near the top (the common
 * case) shift almost nothing, and lookups try the top before a binary search. Grow-only, no per-command
 * allocation.
 */
import { engineError } from '../errors.ts';
import type { SlotViews } from '../ring/ring.ts';
import {
  DEPTH_COMMAND_BYTE, DEPTH_FLAG_END_OF_BATCH, DEPTH_FLAGS_BYTE, DEPTH_NUM_ORDERS_BYTE, DEPTH_PRICE_BYTE,
  DEPTH_QUANTITY_BYTE, DepthCommand, RecordKind, TS_MICROS_BYTE,
} from '../../schemas/records.ts';

export interface OrderBookOptions {
  /**
   * Price increment used to key levels. When omitted a fine grid (1e-6) keys levels and off-tick prices
   * are not counted; give the instrument's tick to have off-tick prices counted.
   */
  tickSize?: number;
  /** Staged commands after which an unterminated batch is applied anyway (default 1,048,576). */
  maxStagedRecords?: number;
  /** Initial level capacity per side (grows as needed; default 256). */
  initialLevels?: number;
}

/** One price level in the plain-object form. */
export interface BookLevel {
  price: number;
  quantity: number;
  orders: number;
}

/** Plain-object snapshot for the API (allocates; not for the hot path). */
export interface BookSnapshot {
  version: number;
  /** Time of the end-of-batch record of the last applied batch (Unix µs), NaN before the first. */
  tsMicros: number;
  /** Best first. */
  bids: BookLevel[];
  /** Best first. */
  asks: BookLevel[];
  bidLevels: number;
  askLevels: number;
  crossed: boolean;
  invalidLevels: number;
  stagedRecords: number;
}

/** Caller-owned arrays that `snapshotInto` fills (best level first); counts say how many are valid. */
export interface BookSnapshotBuffers {
  readonly bidPrices: Float64Array;
  readonly bidQuantities: Uint32Array;
  readonly bidOrders: Uint32Array;
  readonly askPrices: Float64Array;
  readonly askQuantities: Uint32Array;
  readonly askOrders: Uint32Array;
  bidCount: number;
  askCount: number;
  version: number;
  tsMicros: number;
  crossed: boolean;
}

export interface OrderBookStats {
  batches: number;
  commands: number;
  crossedBatches: number;
  invalidPriceCommands: number;
  unplacedCommands: number;
  offTickCommands: number;
  missingDeletes: number;
  forcedBatches: number;
  unknownCommands: number;
  /** BOOK_END slots that arrived while commands were staged (their DEPTH end-of-batch flag was lost). */
  bookEndMismatches: number;
}

export function createSnapshotBuffers(depth: number): BookSnapshotBuffers {
  if (!Number.isInteger(depth) || depth < 0) throw engineError('ENGINE_ERR_INVALID_ARG', `snapshot depth must be a non-negative integer, got ${String(depth)}`);
  return {
    bidPrices: new Float64Array(depth), bidQuantities: new Uint32Array(depth), bidOrders: new Uint32Array(depth),
    askPrices: new Float64Array(depth), askQuantities: new Uint32Array(depth), askOrders: new Uint32Array(depth),
    bidCount: 0, askCount: 0, version: 0, tsMicros: Number.NaN, crossed: false,
  };
}

/** Below this many elements a shift is a plain loop; above, `copyWithin` (a memmove) wins. */
const SHIFT_LOOP_MAX = 12;
/** Levels scanned linearly from the top before a binary search. */
const TOP_SCAN = 8;

/**
 * One side of the book: levels sorted by `key` ascending, worst → best (`key = ticks` for bids,
 * `-ticks` for asks), so the best level is always at `count - 1`.
 */
class BookSide {
  readonly dir: 1 | -1;
  keys: Float64Array;
  prices: Float64Array;
  qty: Uint32Array;
  orders: Uint32Array;
  count = 0;
  /** Levels whose price is <= 0. */
  invalid = 0;

  constructor(dir: 1 | -1, capacity: number) {
    this.dir = dir;
    this.keys = new Float64Array(capacity);
    this.prices = new Float64Array(capacity);
    this.qty = new Uint32Array(capacity);
    this.orders = new Uint32Array(capacity);
  }

  /**
   * First index whose key >= `key` (count when none). Updates cluster at the top of the book (the end of
   * the arrays), so a few levels are scanned linearly from the top (predictable branches) before a binary
   * search of the rest.
   */
  lowerBound(key: number): number {
    const keys = this.keys;
    const n = this.count;
    const stop = n > TOP_SCAN ? n - TOP_SCAN : 0;
    let j = n;
    while (j > stop && keys[j - 1]! >= key) j--;
    if (j > stop || stop === 0) return j;
    let lo = 0;
    let hi = stop;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (keys[mid]! < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  set(ticks: number, price: number, qty: number, orders: number): void {
    const key = this.dir * ticks;
    const i = this.lowerBound(key);
    const n = this.count;
    if (i < n && this.keys[i] === key) {
      if (this.prices[i]! <= 0) this.invalid--;
      if (price <= 0) this.invalid++;
      this.prices[i] = price;
      this.qty[i] = qty;
      this.orders[i] = orders;
      return;
    }
    if (n === this.keys.length) this.#grow();
    const keys = this.keys, prices = this.prices, q = this.qty, o = this.orders;
    if (n - i <= SHIFT_LOOP_MAX) {
      for (let j = n; j > i; j--) { keys[j] = keys[j - 1]!; prices[j] = prices[j - 1]!; q[j] = q[j - 1]!; o[j] = o[j - 1]!; }
    } else {
      keys.copyWithin(i + 1, i, n); prices.copyWithin(i + 1, i, n); q.copyWithin(i + 1, i, n); o.copyWithin(i + 1, i, n);
    }
    keys[i] = key;
    prices[i] = price;
    q[i] = qty;
    o[i] = orders;
    this.count = n + 1;
    if (price <= 0) this.invalid++;
  }

  /** Remove the level at `ticks`; false when there is none. */
  remove(ticks: number): boolean {
    const key = this.dir * ticks;
    const i = this.lowerBound(key);
    const n = this.count;
    if (i >= n || this.keys[i] !== key) return false;
    if (this.prices[i]! <= 0) this.invalid--;
    const keys = this.keys, prices = this.prices, q = this.qty, o = this.orders;
    if (n - i <= SHIFT_LOOP_MAX) {
      for (let j = i + 1; j < n; j++) { keys[j - 1] = keys[j]!; prices[j - 1] = prices[j]!; q[j - 1] = q[j]!; o[j - 1] = o[j]!; }
    } else {
      keys.copyWithin(i, i + 1, n); prices.copyWithin(i, i + 1, n); q.copyWithin(i, i + 1, n); o.copyWithin(i, i + 1, n);
    }
    this.count = n - 1;
    return true;
  }

  clear(): void {
    this.count = 0;
    this.invalid = 0;
  }

  #grow(): void {
    const cap = this.keys.length * 2;
    const k = new Float64Array(cap); k.set(this.keys); this.keys = k;
    const p = new Float64Array(cap); p.set(this.prices); this.prices = p;
    const q = new Uint32Array(cap); q.set(this.qty); this.qty = q;
    const o = new Uint32Array(cap); o.set(this.orders); this.orders = o;
  }

  /** Copy up to `depth` levels best-first into the arrays; returns how many. */
  copyBestFirst(depth: number, prices: Float64Array, qty: Uint32Array, orders: Uint32Array): number {
    let n = this.count < depth ? this.count : depth;
    if (prices.length < n) n = prices.length;
    if (qty.length < n) n = qty.length;
    if (orders.length < n) n = orders.length;
    for (let k = 0, i = this.count - 1; k < n; k++, i--) {
      prices[k] = this.prices[i]!;
      qty[k] = this.qty[i]!;
      orders[k] = this.orders[i]!;
    }
    return n;
  }

  levelsBestFirst(depth: number): BookLevel[] {
    const n = this.count < depth ? this.count : depth;
    const out: BookLevel[] = new Array<BookLevel>(n);
    for (let k = 0, i = this.count - 1; k < n; k++, i--) out[k] = { price: this.prices[i]!, quantity: this.qty[i]!, orders: this.orders[i]! };
    return out;
  }
}

const EOB = DEPTH_FLAG_END_OF_BATCH;
const CMD_NONE = DepthCommand.NONE;
const CMD_CLEAR_BOOK = DepthCommand.CLEAR_BOOK;
const CMD_DELETE_BID = DepthCommand.DELETE_BID_LEVEL;
const CMD_MAX = DepthCommand.DELETE_ASK_LEVEL;
const DEFAULT_TICK = 1e-6;
/**
 * Off-tick tolerance in ticks: a fixed 1e-6 plus two f32 ulps of the scaled price, because Sierra stores
 * prices as f32 (4512.3 is stored as 4512.2998046875, which is on the 0.1 grid to within f32 precision).
 */
const OFF_TICK_ABS = 1e-6;
const OFF_TICK_REL = 2.4e-7;

export class OrderBook {
  readonly tickSize: number;
  readonly #invTick: number;
  readonly #countOffTick: boolean;
  readonly #maxStaged: number;
  readonly #bids: BookSide;
  readonly #asks: BookSide;

  // staged batch (struct of arrays, grow-only)
  #stCmd: Uint8Array;
  #stPrice: Float64Array;
  #stQty: Uint32Array;
  #stOrders: Uint32Array;
  #staged = 0;

  #version = 0;
  #tsMicros = Number.NaN;
  #crossed = false;
  // counters (see OrderBookStats)
  #batches = 0;
  #commands = 0;
  #crossedBatches = 0;
  #invalidPrice = 0;
  #unplaced = 0;
  #offTick = 0;
  #missingDeletes = 0;
  #forced = 0;
  #unknown = 0;
  #bookEndMismatches = 0;

  constructor(opts: OrderBookOptions = {}) {
    const tick = opts.tickSize ?? DEFAULT_TICK;
    if (!Number.isFinite(tick) || tick <= 0) throw engineError('ENGINE_ERR_INVALID_ARG', `tickSize must be a finite number above 0, got ${String(tick)}`);
    this.tickSize = tick;
    this.#invTick = 1 / tick;
    this.#countOffTick = opts.tickSize !== undefined;
    const maxStaged = opts.maxStagedRecords ?? 1 << 20;
    if (!Number.isInteger(maxStaged) || maxStaged < 1) throw engineError('ENGINE_ERR_INVALID_ARG', `maxStagedRecords must be a positive integer, got ${String(maxStaged)}`);
    this.#maxStaged = maxStaged;
    const cap = Math.max(8, opts.initialLevels ?? 256);
    this.#bids = new BookSide(1, cap);
    this.#asks = new BookSide(-1, cap);
    this.#stCmd = new Uint8Array(cap);
    this.#stPrice = new Float64Array(cap);
    this.#stQty = new Uint32Array(cap);
    this.#stOrders = new Uint32Array(cap);
  }

  /** Applied batches so far (0 before the first end-of-batch record). */
  get version(): number { return this.#version; }
  /** Time of the last applied batch's end-of-batch record (Unix µs); NaN before the first. */
  get tsMicros(): number { return this.#tsMicros; }
  get bidLevels(): number { return this.#bids.count; }
  get askLevels(): number { return this.#asks.count; }
  /** Best bid price, NaN when the bid side is empty. */
  get bestBid(): number { const s = this.#bids; return s.count === 0 ? Number.NaN : s.prices[s.count - 1]!; }
  /** Best ask price, NaN when the ask side is empty. */
  get bestAsk(): number { const s = this.#asks; return s.count === 0 ? Number.NaN : s.prices[s.count - 1]!; }
  get bestBidQuantity(): number { const s = this.#bids; return s.count === 0 ? 0 : s.qty[s.count - 1]!; }
  get bestAskQuantity(): number { const s = this.#asks; return s.count === 0 ? 0 : s.qty[s.count - 1]!; }
  /** Best bid >= best ask after the last applied batch. */
  get crossed(): boolean { return this.#crossed; }
  /** Levels in the book at a price <= 0 (both sides). */
  get invalidLevels(): number { return this.#bids.invalid + this.#asks.invalid; }
  /** Commands received since the last end-of-batch record, not yet visible. */
  get stagedRecords(): number { return this.#staged; }

  stats(): OrderBookStats {
    return {
      batches: this.#batches, commands: this.#commands, crossedBatches: this.#crossedBatches,
      invalidPriceCommands: this.#invalidPrice, unplacedCommands: this.#unplaced, offTickCommands: this.#offTick,
      missingDeletes: this.#missingDeletes, forcedBatches: this.#forced, unknownCommands: this.#unknown,
      bookEndMismatches: this.#bookEndMismatches,
    };
  }

  /**
   * Stage one depth command (same argument list as a `.depth` record and the simulator's DepthSink).
   * Returns true when this record ended a batch and the batch was applied.
   */
  apply(tsMicros: number, command: number, flags: number, numOrders: number, price: number, quantity: number): boolean {
    let n = this.#staged;
    if (n === this.#stCmd.length) this.#growStage();
    this.#stCmd[n] = command;
    this.#stPrice[n] = price;
    this.#stQty[n] = quantity;
    this.#stOrders[n] = numOrders;
    this.#staged = ++n;
    if ((flags & EOB) !== 0) { this.#commit(tsMicros); return true; }
    if (n >= this.#maxStaged) { this.#forced++; this.#commit(tsMicros); return true; }
    return false;
  }

  /**
   * Apply a ring slot (the engine's depth consumer): DEPTH slots are staged/applied as `apply()`;
   * a BOOK_END slot changes nothing (its DEPTH end-of-batch record already applied the batch; one
   * arriving while commands are staged is counted in `bookEndMismatches`). Other kinds are ignored.
   * Returns true when a batch was applied.
   */
  applyFromSlot(v: SlotViews, b: number): boolean {
    const kind = v.u8[b]!;
    if (kind === RecordKind.DEPTH) {
      return this.apply(
        v.f64[(b + TS_MICROS_BYTE) >> 3]!, v.u8[b + DEPTH_COMMAND_BYTE]!, v.u8[b + DEPTH_FLAGS_BYTE]!,
        v.u16[(b + DEPTH_NUM_ORDERS_BYTE) >> 1]!, v.f64[(b + DEPTH_PRICE_BYTE) >> 3]!, v.u32[(b + DEPTH_QUANTITY_BYTE) >> 2]!,
      );
    }
    if (kind === RecordKind.BOOK_END && this.#staged !== 0) this.#bookEndMismatches++;
    return false;
  }

  /** Empty the book and the staged batch (version keeps counting up). Counters are kept. */
  reset(): void {
    this.#bids.clear();
    this.#asks.clear();
    this.#staged = 0;
    this.#crossed = false;
    this.#version++;
  }

  /** Fill caller-owned arrays with up to `depth` levels per side, best first (no allocation). */
  snapshotInto(depth: number, out: BookSnapshotBuffers): void {
    out.bidCount = this.#bids.copyBestFirst(depth, out.bidPrices, out.bidQuantities, out.bidOrders);
    out.askCount = this.#asks.copyBestFirst(depth, out.askPrices, out.askQuantities, out.askOrders);
    out.version = this.#version;
    out.tsMicros = this.#tsMicros;
    out.crossed = this.#crossed;
  }

  /** Plain-object snapshot of up to `depth` levels per side (allocates; for the API, not the hot path). */
  snapshot(depth = Number.MAX_SAFE_INTEGER): BookSnapshot {
    return {
      version: this.#version, tsMicros: this.#tsMicros,
      bids: this.#bids.levelsBestFirst(depth), asks: this.#asks.levelsBestFirst(depth),
      bidLevels: this.#bids.count, askLevels: this.#asks.count,
      crossed: this.#crossed, invalidLevels: this.invalidLevels, stagedRecords: this.#staged,
    };
  }

  #commit(tsMicros: number): void {
    const n = this.#staged;
    const cmd = this.#stCmd, px = this.#stPrice, qty = this.#stQty, ord = this.#stOrders;
    const bids = this.#bids, asks = this.#asks;
    const inv = this.#invTick;
    const countOffTick = this.#countOffTick;
    for (let i = 0; i < n; i++) {
      const c = cmd[i]!;
      if (c === CMD_CLEAR_BOOK) { bids.clear(); asks.clear(); continue; }
      if (c === CMD_NONE) continue;
      if (c > CMD_MAX) { this.#unknown++; continue; }
      const price = px[i]!;
      if (!(price > 0)) {
        this.#invalidPrice++;
        if (!Number.isFinite(price)) { this.#unplaced++; continue; }
      }
      const scaled = price * inv;
      const ticks = Math.round(scaled);
      const off = scaled - ticks;
      if (countOffTick && (off > OFF_TICK_ABS || off < -OFF_TICK_ABS) && Math.abs(off) > OFF_TICK_ABS + Math.abs(scaled) * OFF_TICK_REL) this.#offTick++;
      // Sierra numbering: even = bid side, odd = ask side, for ADD (2,3), MODIFY (4,5), DELETE (6,7).
      const side = (c & 1) === 0 ? bids : asks;
      if (c >= CMD_DELETE_BID || qty[i] === 0) {
        if (!side.remove(ticks) && c >= CMD_DELETE_BID) this.#missingDeletes++;
      } else {
        side.set(ticks, price, qty[i]!, ord[i]!);
      }
    }
    this.#commands += n;
    this.#staged = 0;
    this.#batches++;
    this.#version++;
    this.#tsMicros = tsMicros;
    const crossed = bids.count > 0 && asks.count > 0 && bids.prices[bids.count - 1]! >= asks.prices[asks.count - 1]!;
    this.#crossed = crossed;
    if (crossed) this.#crossedBatches++;
  }

  #growStage(): void {
    const cap = this.#stCmd.length * 2;
    const c = new Uint8Array(cap); c.set(this.#stCmd); this.#stCmd = c;
    const p = new Float64Array(cap); p.set(this.#stPrice); this.#stPrice = p;
    const q = new Uint32Array(cap); q.set(this.#stQty); this.#stQty = q;
    const o = new Uint32Array(cap); o.set(this.#stOrders); this.#stOrders = o;
  }
}
