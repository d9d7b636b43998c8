/**
 * The main thread's end of the validator's feed ring: validated records in ring order, handed to every
 * subscribed RecordListener (api/types.ts: the WebSocket hub, the bench harness...). Parks with
 * `waitForDataAsync` (never blocks the uWS thread) and yields to the event loop after every batch.
 *
 * A listener that throws is unsubscribed (and reported through `onListenerError`): one broken consumer
 * must not stop the others or the drain.
 */
import type { RecordFeed, RecordListener } from '../../api/types.ts';
import { RecordKind } from '../../schemas/records.ts';
import { MainThreadConsumer } from './drain.ts';


export interface FeedCounters {
  records: number;
  trades: number;
  quotes: number;
  gaps: number;
  other: number;
  listenerErrors: number;
}

export class FeedDrain extends MainThreadConsumer implements RecordFeed {
  readonly name: string;
  #listeners: RecordListener[] = [];
  readonly #dropped = new WeakSet<RecordListener>();
  #droppedAny = false;
  readonly counters: FeedCounters = { records: 0, trades: 0, quotes: 0, gaps: 0, other: 0, listenerErrors: 0 };
  /** Per symbol id: validated trades seen (for status). */
  readonly tradesBySymbol = new Float64Array(65536);
  lastRecordAtMs = 0;
  readonly #onListenerError: (err: unknown) => void;

  constructor(name: string, ring: SharedArrayBuffer, onListenerError: (err: unknown) => void = () => undefined) {
    super(ring);
    this.name = name;
    this.#onListenerError = onListenerError;
  }

  subscribe(listener: RecordListener): () => void {
    this.#listeners = [...this.#listeners, listener];
    return () => { this.#listeners = this.#listeners.filter((l) => l !== listener); };
  }

  get listenerCount(): number { return this.#listeners.length; }


  protected consume(n: number): void {
    const r = this.reader;
    const v = r.views;
    const c = this.counters;
    const ls = this.#listeners;
    for (let i = 0; i < n; i++) {
      const b = r.slotByte(i);
      const kind = v.u8[b];
      if (kind === RecordKind.TRADE) {
        c.trades++;
        const id = v.u16[(b + 2) >> 1]!;
        this.tradesBySymbol[id] = this.tradesBySymbol[id]! + 1;
      } else if (kind === RecordKind.QUOTE) c.quotes++;
      else if (kind === RecordKind.GAP) c.gaps++;
      else c.other++;
      for (let k = 0; k < ls.length; k++) {
        const l = ls[k]!;
        if (this.#droppedAny && this.#dropped.has(l)) continue;
        try {
          l.onRecord(v, b);
        } catch (err) {
          this.#drop(l, err);
        }
      }
    }
    c.records += n;
    for (let k = 0; k < ls.length; k++) {
      const l = ls[k]!;
      if (this.#dropped.has(l)) continue;
      try { l.onBatchEnd(); } catch (err) { this.#drop(l, err); }
    }
    r.release(n);
    this.lastRecordAtMs = Date.now();
  }

  #drop(l: RecordListener, err: unknown): void {
    if (this.#dropped.has(l) || !this.#listeners.includes(l)) return;
    this.#dropped.add(l);
    this.#droppedAny = true;
    this.counters.listenerErrors++;
    this.#listeners = this.#listeners.filter((x) => x !== l);
    this.#onListenerError(err);
  }
}
