/**
 * Frame builders of the WebSocket hub besides the binary ones: the JSON forms of tick batches, book and GEX
 * frames, bars, errors. The JSON tick batches the hub sends come from `TickBatchJsonWriter` (bytes into a
 * reused buffer, no garbage per tick); everything else here allocates (cold paths, and `tickBatchJsonReference`,
 * the WireTick objects + frameToJson form the writer is tested against). Binary tick batches are
 * `WireEncoder.encodeTickBatch`.
 */
import { barFrameJson, frameToJson, sideName, type TickColumns, type WireBar, type WireBookLevel, type WireFrame, type WireGexSnapshot, type WireTick } from '../../schemas/wire.ts';
import type { BookSnapshotBuffers } from '../../engine/book/order-book.ts';

/**
 * The JSON form (schemas/wire.ts frameToJson) of a TickBatch taken from columns [start, start+count), written
 * as UTF-8 bytes into one reused buffer: no string per number, per tick or per frame, so the hub's JSON
 * fan-out makes next to no garbage (the template-string form it replaced made about 0.9 KB of garbage per tick
 * and most of the main thread's minor GCs; it stays in bench/wire.bench.ts as the baseline). The bytes are
 * frameToJson's, byte for byte (property tests against `tickBatchJsonReference` over random columns and
 * awkward numbers).
 *
 * `write` returns a view of the writer's buffer, valid until the next `write`: send it (uWS copies) before
 * writing the next frame.
 */
export class TickBatchJsonWriter {
  #buf: Uint8Array;
  /** per channel: `{"channel":<ch>,"tsMicros":` */
  readonly #heads = new Map<string, Uint8Array>();
  /** per symbol, then source: `,"payload":{"type":"tickBatch","symbol":<sym>,"source":<src>,"firstSeq":` */
  readonly #mids = new Map<string, Map<string, Uint8Array>>();

  constructor(initialBytes = 16_384) {
    this.#buf = new Uint8Array(Math.max(256, initialBytes));
  }

  write(channel: string, frameTsMicros: number, symbol: string, source: string, cols: TickColumns, start: number, count: number): Uint8Array {
    // a tick is at most ~330 bytes (every number at its longest): reserve for the whole frame up front
    const need = 256 + channel.length * 6 + symbol.length * 6 + source.length * 6 + count * 400;
    if (this.#buf.length < need) this.#grow(need);
    const buf = this.#buf;
    let p = put(buf, 0, this.#head(channel));
    p = putNum(buf, p, frameTsMicros);
    p = put(buf, p, this.#mid(symbol, source));
    p = putUint(buf, p, count > 0 ? cols.seq[start]! : 0);
    p = put(buf, p, K_TICKS);
    const { symbolId, seq, tsMicros, price, bid, ask, size, bidSize, askSize, side, flags } = cols;
    for (let k = 0; k < count; k++) {
      const i = start + k;
      p = put(buf, p, k === 0 ? K_SYMBOL_ID : K_NEXT_SYMBOL_ID);
      p = putUint(buf, p, symbolId[i]!);
      p = put(buf, p, K_SEQ);
      p = putUint(buf, p, seq[i]!);
      p = put(buf, p, K_TS);
      p = putNum(buf, p, tsMicros[i]!);
      p = put(buf, p, K_PRICE);
      p = putNum(buf, p, price[i]!);
      p = put(buf, p, K_BID);
      p = putNum(buf, p, bid[i]!);
      p = put(buf, p, K_ASK);
      p = putNum(buf, p, ask[i]!);
      p = put(buf, p, K_SIZE);
      p = putUint(buf, p, size[i]!);
      p = put(buf, p, K_BID_SIZE);
      p = putUint(buf, p, bidSize[i]!);
      p = put(buf, p, K_ASK_SIZE);
      p = putUint(buf, p, askSize[i]!);
      p = put(buf, p, SIDES[side[i]!] ?? SIDE_UNKNOWN);
      p = putUint(buf, p, flags[i]!);
      buf[p++] = 0x7d; // }
    }
    p = put(buf, p, K_END);
    return buf.subarray(0, p);
  }

  #grow(bytes: number): void {
    let n = this.#buf.length;
    while (n < bytes) n *= 2;
    this.#buf = new Uint8Array(n);
  }

  #head(channel: string): Uint8Array {
    let h = this.#heads.get(channel);
    if (h === undefined) {
      if (this.#heads.size >= 4096) this.#heads.clear(); // bounded: channels come from registered symbols
      h = UTF8.encode(`{"channel":${JSON.stringify(channel)},"tsMicros":`);
      this.#heads.set(channel, h);
    }
    return h;
  }

  #mid(symbol: string, source: string): Uint8Array {
    let bySource = this.#mids.get(symbol);
    if (bySource === undefined) {
      if (this.#mids.size >= 4096) this.#mids.clear();
      bySource = new Map();
      this.#mids.set(symbol, bySource);
    }
    let m = bySource.get(source);
    if (m === undefined) {
      if (bySource.size >= 64) bySource.clear();
      m = UTF8.encode(`,"payload":{"type":"tickBatch","symbol":${JSON.stringify(symbol)},"source":${JSON.stringify(source)},"firstSeq":`);
      bySource.set(source, m);
    }
    return m;
  }
}

const UTF8 = new TextEncoder();
const K_TICKS = UTF8.encode(',"ticks":[');
const K_SYMBOL_ID = UTF8.encode('{"symbolId":');
const K_NEXT_SYMBOL_ID = UTF8.encode(',{"symbolId":');
const K_SEQ = UTF8.encode(',"seq":');
const K_TS = UTF8.encode(',"tsMicros":');
const K_PRICE = UTF8.encode(',"price":');
const K_BID = UTF8.encode(',"bid":');
const K_ASK = UTF8.encode(',"ask":');
const K_SIZE = UTF8.encode(',"size":');
const K_BID_SIZE = UTF8.encode(',"bidSize":');
const K_ASK_SIZE = UTF8.encode(',"askSize":');
const K_END = UTF8.encode(']}}');
const K_NULL = UTF8.encode('null');
/** `,"side":"<name>","flags":` per side code */
const SIDES = [0, 1, 2, 3, 4, 5, 6, 7].map((c) => UTF8.encode(`,"side":"${sideName(c)}","flags":`));
const SIDE_UNKNOWN = UTF8.encode(`,"side":"${sideName(255)}","flags":`);

function put(buf: Uint8Array, p: number, b: Uint8Array): number {
  const n = b.length;
  for (let j = 0; j < n; j++) buf[p + j] = b[j]!;
  return p + n;
}

/** Decimal digits of 0 <= x < 1e8 (an int32), at least `min` of them (zero-padded). */
function putSmall(buf: Uint8Array, p: number, x: number, min: number): number {
  let n = x < 10 ? 1 : x < 100 ? 2 : x < 1000 ? 3 : x < 10_000 ? 4 : x < 100_000 ? 5 : x < 1_000_000 ? 6 : x < 10_000_000 ? 7 : 8;
  if (n < min) n = min;
  let q = x | 0;
  for (let j = p + n - 1; j >= p; j--) {
    const d = (q / 10) | 0;
    buf[j] = 48 + q - d * 10;
    q = d;
  }
  return p + n;
}

/** A non-negative integer below 2^53, in decimal. */
function putUint(buf: Uint8Array, p: number, x: number): number {
  if (x < 100_000_000) return putSmall(buf, p, x, 1);
  const hi = Math.floor(x / 100_000_000);
  const lo = x - hi * 100_000_000;
  if (hi < 100_000_000) p = putSmall(buf, p, hi, 1);
  else {
    const hh = Math.floor(hi / 100_000_000); // x >= 1e16: at most 2^53 ≈ 9.0e15 never gets here, kept for safety
    p = putSmall(buf, p, hh, 1);
    p = putSmall(buf, p, hi - hh * 100_000_000, 8);
  }
  return putSmall(buf, p, lo, 8);
}

/**
 * A number exactly as JSON.stringify writes it. Integers below 2^53 and decimals of up to 6 fraction
 * digits below 1e9 (every price) are written digit by digit: m / 10^k round-trips to x for the smallest
 * such k, which is the shortest form JS prints. Anything else (exponent forms, long fractions) goes
 * through String(x), which allocates.
 */
function putNum(buf: Uint8Array, p: number, x: number): number {
  if (x !== x || x === Infinity || x === -Infinity) return put(buf, p, K_NULL);
  if (x === 0) { buf[p] = 48; return p + 1; } // -0 too, as JSON.stringify
  let a = x;
  if (a < 0) { buf[p++] = 45; a = -a; }
  if (a <= MAX_SAFE && Math.floor(a) === a) return putUint(buf, p, a);
  if (a >= 1e-6 && a < 1e9) {
    for (let k = 1; k <= 6; k++) {
      const scale = POW10[k]!;
      const m = Math.round(a * scale);
      if (m / scale === a) {
        const ip = Math.floor(m / scale);
        p = putUint(buf, p, ip);
        buf[p++] = 46; // .
        return putSmall(buf, p, m - ip * scale, k);
      }
    }
  }
  const s = String(a);
  for (let j = 0; j < s.length; j++) buf[p++] = s.charCodeAt(j);
  return p;
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const POW10 = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000];

/** A TickBatch through WireTick objects and frameToJson: the reference TickBatchJsonWriter is tested against. */
export function tickBatchJsonReference(channel: string, frameTsMicros: number, symbol: string, source: string, cols: TickColumns, start: number, count: number): string {
  const ticks = new Array<WireTick>(count);
  for (let k = 0; k < count; k++) {
    const i = start + k;
    ticks[k] = {
      symbolId: cols.symbolId[i]!, seq: cols.seq[i]!, tsMicros: cols.tsMicros[i]!, price: cols.price[i]!, bid: cols.bid[i]!, ask: cols.ask[i]!,
      size: cols.size[i]!, bidSize: cols.bidSize[i]!, askSize: cols.askSize[i]!, side: sideName(cols.side[i]!), flags: cols.flags[i]!,
    };
  }
  const f: WireFrame = { channel, tsMicros: frameTsMicros, payload: { type: 'tickBatch', symbol, source, firstSeq: count > 0 ? cols.seq[start]! : 0, ticks } };
  return frameToJson(f);
}

/** Book levels of a snapshot buffer as wire objects (best first). */
export function bookLevels(buf: BookSnapshotBuffers): { bids: WireBookLevel[]; asks: WireBookLevel[] } {
  const bids = new Array<WireBookLevel>(buf.bidCount);
  for (let i = 0; i < buf.bidCount; i++) bids[i] = { price: buf.bidPrices[i]!, size: buf.bidQuantities[i]!, orders: Math.min(buf.bidOrders[i]!, 0xffff) };
  const asks = new Array<WireBookLevel>(buf.askCount);
  for (let i = 0; i < buf.askCount; i++) asks[i] = { price: buf.askPrices[i]!, size: buf.askQuantities[i]!, orders: Math.min(buf.askOrders[i]!, 0xffff) };
  return { bids, asks };
}

export function gexJson(channel: string, frameTsMicros: number, g: WireGexSnapshot): string {
  return frameToJson({ channel, tsMicros: frameTsMicros, payload: { type: 'gexSnapshot', ...g } });
}

export function errorJson(frameTsMicros: number, code: string, message: string, requestId: string | null): string {
  return frameToJson({ channel: 'error', tsMicros: frameTsMicros, payload: { type: 'error', code, message, requestId } });
}

/**
 * A 1-minute bar (built by the hub from trades) or a bar record of a bar source: schemas/wire.ts `WireBar`
 * (wire.fbs `Bar`) with the interval narrowed to the two the hub sends.
 */
export interface BarMessage extends WireBar {
  /** '1m' for bars built from trades; 'source' for BAR records passed through. */
  interval: '1m' | 'source';
}

/**
 * The JSON form of a bar frame, for JSON clients (binary clients get `WireEncoder.encodeBar`). Byte for byte
 * the text JSON clients got before bars had a wire table: `{"channel","tsMicros","payload":{"type":"bar",
 * symbol, interval, startMicros, open, high, low, close, volume, trades, buyVolume, sellVolume}}`, NaN -> null.
 */
export function barJson(channel: string, frameTsMicros: number, bar: BarMessage): string {
  return barFrameJson(channel, frameTsMicros, bar);
}
