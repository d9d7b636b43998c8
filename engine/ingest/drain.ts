/**
 * Interim consumer of the source rings on the engine's main thread: keeps the latest table and the order
 * books current and counts what arrives. It parks with `waitForDataAsync` (never blocks the uWS thread)
 * and yields to the event loop after every batch. The validator worker (quality rules, journal, hot window,
 * Redis, Parquet) replaces this as the rings' consumer; until then this is what `tickpipe start` runs.
 */
import { OrderBook } from '../book/order-book.ts';
import type { LatestTable } from '../latest/latest-table.ts';
import { RingReader, type SlotViews } from '../ring/ring.ts';
import type { RecordListener } from '../../api/types.ts';
import {
  RecordKind, SIDE_MASK, TRADE_ASK_BYTE, TRADE_ASK_SIZE_BYTE, TRADE_BID_BYTE, TRADE_BID_SIZE_BYTE, TRADE_FLAGS_BYTE,
  TRADE_PRICE_BYTE, TRADE_SIZE_BYTE, TradeFlag, readF64, readKind, readSeq, readSymbolId, readTsMicros, readU32,
} from '../../schemas/records.ts';

const BATCH = 4096;
const PARK_MS = 100;

export interface DrainCounters {
  trades: number;
  quotes: number;
  depth: number;
  bookBatches: number;
  gaps: number;
  other: number;
}

/**
 * A consumer of one ring on the engine's main thread (the depth drain, the record feed): consumes batches of
 * at most BATCH records, yields to the event loop (HTTP, timers) after each, parks with `waitForDataAsync` when
 * the ring is empty (never blocks the uWS thread), and ends once the producer has finished, or a stop was
 * requested and the ring is no longer RUNNING, with everything published consumed.
 */
export abstract class MainThreadConsumer {
  protected readonly reader: RingReader;
  #running: Promise<void> | null = null;
  #stopRequested = false;

  constructor(ring: SharedArrayBuffer) {
    this.reader = RingReader.attach(ring);
  }

  /** Handle the next `n` available slots (slotByte(0..n-1)) and release them. */
  protected abstract consume(n: number): void;

  start(): void {
    this.#running ??= this.#loop();
  }

  /** Resolve once the ring's producer has stopped and everything published has been consumed. */
  async stop(): Promise<void> {
    this.#stopRequested = true;
    await this.#running;
  }

  async #loop(): Promise<void> {
    const r = this.reader;
    for (;;) {
      const n = r.available();
      if (n === 0) {
        if (r.finished || (this.#stopRequested && r.state !== 1)) return;
        await r.waitForDataAsync(PARK_MS);
        continue;
      }
      this.consume(n < BATCH ? n : BATCH);
      await new Promise<void>((res) => setImmediate(res));
    }
  }
}

export class RingDrain extends MainThreadConsumer {
  readonly name: string;
  readonly #latest: LatestTable;
  readonly #books: (OrderBook | undefined)[];
  readonly #tickSize: (id: number) => number;
  readonly counters: DrainCounters = { trades: 0, quotes: 0, depth: 0, bookBatches: 0, gaps: 0, other: 0 };
  /** Per symbol id: trades seen (for status). */
  readonly tradesBySymbol = new Float64Array(65536);
  lastRecordAtMs = 0;
  /** Receives the DEPTH and BOOK_END records after the book applied them (the WebSocket hub's book channel). */
  listener: RecordListener | null = null;
  /** Listener calls that threw (the listener is dropped after the first). */
  listenerErrors = 0;

  constructor(name: string, ring: SharedArrayBuffer, latest: LatestTable, tickSize: (id: number) => number) {
    super(ring);
    this.name = name;
    this.#latest = latest;
    this.#books = [];
    this.#tickSize = tickSize;
  }

  book(symbolId: number): OrderBook | undefined {
    return this.#books[symbolId];
  }


  #forward(v: SlotViews, b: number): void {
    try { this.listener!.onRecord(v, b); } catch { this.listenerErrors++; this.listener = null; }
  }

  protected consume(n: number): void {
    const r = this.reader;
    const v = r.views;
    const c = this.counters;
    for (let i = 0; i < n; i++) {
      const b = r.slotByte(i);
      const kind = readKind(v, b);
      const id = readSymbolId(v, b);
      switch (kind) {
        case RecordKind.TRADE: {
          const flags = readU32(v, b, TRADE_FLAGS_BYTE);
          const sideBits = flags & SIDE_MASK;
          const side = sideBits === TradeFlag.SIDE_BUY ? 1 : sideBits === TradeFlag.SIDE_SELL ? 2 : 0;
          this.#latest.writeTick(
            id, readTsMicros(v, b), readF64(v, b, TRADE_PRICE_BYTE), readU32(v, b, TRADE_SIZE_BYTE), side, readSeq(v, b),
            readF64(v, b, TRADE_BID_BYTE), readU32(v, b, TRADE_BID_SIZE_BYTE), readF64(v, b, TRADE_ASK_BYTE), readU32(v, b, TRADE_ASK_SIZE_BYTE),
          );
          c.trades++;
          this.tradesBySymbol[id] = (this.tradesBySymbol[id] ?? 0) + 1;
          break;
        }
        case RecordKind.QUOTE:
          this.#latest.writeQuote(id, readTsMicros(v, b), readF64(v, b, TRADE_BID_BYTE), readU32(v, b, TRADE_BID_SIZE_BYTE), readF64(v, b, TRADE_ASK_BYTE), readU32(v, b, TRADE_ASK_SIZE_BYTE));
          c.quotes++;
          break;
        case RecordKind.DEPTH: {
          let book = this.#books[id];
          if (book === undefined) { book = new OrderBook({ tickSize: this.#tickSize(id) }); this.#books[id] = book; }
          book.applyFromSlot(v, b);
          c.depth++;
          if (this.listener !== null) this.#forward(v, b);
          break;
        }
        case RecordKind.BOOK_END:
          c.bookBatches++;
          if (this.listener !== null) this.#forward(v, b);
          break;
        case RecordKind.GAP:
          c.gaps++;
          break;
        default:
          c.other++;
      }
    }
    r.release(n);
    if (this.listener !== null) {
      try { this.listener.onBatchEnd(); } catch { this.listenerErrors++; this.listener = null; }
    }
    this.lastRecordAtMs = Date.now();
  }
}
