/**
 * Caller-owned destination of hot window queries: one set of typed arrays, allocated once per reader
 * (`createHotColumns(n)`) and reused by every `newest` / `since` call. Row i of the last answer is
 * `tsMicros[i], price[i], …` for i < `length`; rows are oldest first. Elements at or past `length` hold
 * whatever an earlier answer left there.
 *
 * `toObjects` turns an answer into JSON-ready objects for the REST API (allocates; cold path).
 */
import { engineError } from '../errors.ts';
import { microsToIso } from '../latest/latest-table.ts';
import { TradeFlag } from '../../schemas/records.ts';

export class HotColumns {
  /** Most rows one answer can hold (the arrays' length). */
  readonly capacity: number;
  readonly tsMicros: Float64Array;
  readonly price: Float64Array;
  readonly bid: Float64Array;
  readonly ask: Float64Array;
  readonly size: Uint32Array;
  readonly flags: Uint32Array;
  readonly seq: Uint32Array;
  readonly sourceId: Uint8Array;
  /** Rows filled by the last query (0 when it found none or was busy). */
  length = 0;
  /** Symbol id of the last query. */
  symbolId = 0;
  /**
   * From the same consistent snapshot as the rows: the window holds EVERY trade of the symbol with
   * ts ≥ heldFromMicros (up to `newestTsMicros`), and answers only from that range. Ticks older than this
   * must come from Parquet / the journal. +Infinity when the window holds nothing for the symbol.
   */
  heldFromMicros = Infinity;
  /** ts of the symbol's newest entry at the snapshot (NaN when the window holds nothing). */
  newestTsMicros = NaN;
  /**
   * `newest`: rows older than the first one returned are held too (the answer was cut by n or by the
   * columns' capacity). `since`: rows newer than the last one returned are held too (cut by the limit).
   */
  more = false;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1 << 26) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `hot columns capacity must be an integer 1..2^26, got ${String(capacity)}`, { capacity: Number(capacity) });
    }
    this.capacity = capacity;
    this.tsMicros = new Float64Array(capacity);
    this.price = new Float64Array(capacity);
    this.bid = new Float64Array(capacity);
    this.ask = new Float64Array(capacity);
    this.size = new Uint32Array(capacity);
    this.flags = new Uint32Array(capacity);
    this.seq = new Uint32Array(capacity);
    this.sourceId = new Uint8Array(capacity);
  }
}

/** Allocate a reusable destination for answers of up to `rows` rows (once per reader, not per query). */
export function createHotColumns(rows: number): HotColumns {
  return new HotColumns(rows);
}

/** One trade of a `/api/v1/ticks/realtime` answer. NaN prices become null. */
export interface HotTickJson {
  symbol: string;
  /** ISO 8601 UTC with 6 fractional digits. */
  ts: string | null;
  ts_us: number;
  ts_ms: number;
  price: number | null;
  size: number;
  bid: number | null;
  ask: number | null;
  side: 'buy' | 'sell' | null;
  flags: number;
  seq: number;
  source: number;
}

const num = (x: number): number | null => (Number.isNaN(x) ? null : x);

/** The rows of the last answer in `out` as JSON-ready objects, oldest first. Allocates: cold path only. */
export function toObjects(out: HotColumns, symbol: string): HotTickJson[] {
  const rows: HotTickJson[] = new Array<HotTickJson>(out.length);
  for (let i = 0; i < out.length; i++) {
    const ts = out.tsMicros[i] as number;
    const flags = out.flags[i] as number;
    rows[i] = {
      symbol,
      ts: microsToIso(ts),
      ts_us: ts,
      ts_ms: Math.floor(ts / 1000),
      price: num(out.price[i] as number),
      size: out.size[i] as number,
      bid: num(out.bid[i] as number),
      ask: num(out.ask[i] as number),
      side: (flags & TradeFlag.SIDE_BUY) !== 0 ? 'buy' : (flags & TradeFlag.SIDE_SELL) !== 0 ? 'sell' : null,
      flags,
      seq: out.seq[i] as number,
      source: out.sourceId[i] as number,
    };
  }
  return rows;
}
