/**
 * The sink's hot path: one trade record → the RESP bytes of its XADD (and PUBLISH), written straight into
 * the batch buffer, without a string or an object per trade.
 *
 *   XADD <prefix>ticks:<SYM> [MINID ~|= <min ms>] <ms>-<n> price P size S bid B ask A side B|S| seq Q ts_us T source SRC
 *   PUBLISH <prefix>market_data:<source>:trades {"symbol":…,"price":…,"size":…,"side":"…","timestamp":"…","ts_ms":…,"source":"…"}
 *
 * Numbers are written as `String(x)` writes them (resp.ts); every constant run of bytes (command heads
 * with their key or channel, field names, JSON pieces) is encoded once, per symbol or per source. A tick
 * shares the digits of its millisecond with the ticks before it (the ID's `<ms>`, the first digits of
 * `ts_us`, `ts_ms`), and the second of its ISO timestamp. What the bytes mean is the contract of
 * DESIGN.md §6 and the sink's header comment; test/redis-sink.test.ts reads them back from Redis.
 */
import type { SlotViews } from '../../engine/ring/ring.ts';
import { SYMBOL_MAX_CHARS } from '../../engine/symbols/layout.ts';
import { TradeFlag } from '../../schemas/records.ts';
import { N_SOURCE_FACTOR, N_US_FACTOR } from './ids.ts';
import {
  CRLF0, CRLF1, digits, digits32, encodeArg, fill32, fixLenHeader, putBytes, putDigits, putDigits32, putLenHeader, putNumArgAt, putU32Arg,
} from './resp.ts';

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');
// field names, each with the RESP header of its argument
const F_PRICE = encodeArg('price'), F_SIZE = encodeArg('size'), F_BID = encodeArg('bid'), F_ASK = encodeArg('ask');
const F_SIDE_B = latin1('$4\r\nside\r\n$1\r\nB\r\n'), F_SIDE_S = latin1('$4\r\nside\r\n$1\r\nS\r\n'), F_SIDE_NONE = latin1('$4\r\nside\r\n$0\r\n\r\n');
const F_SEQ = encodeArg('seq'), F_TS_US = encodeArg('ts_us');
// pieces of the PUBLISH payload
const JSON_NULL = latin1('null');
const JSON_SIZE = latin1(',"size":');
const JSON_SIDE_B = latin1(',"side":"B","timestamp":"');
const JSON_SIDE_S = latin1(',"side":"S","timestamp":"');
const JSON_SIDE_NONE = latin1(',"side":"","timestamp":"');
const JSON_TS_MS = latin1('","ts_ms":');

/** Longest key prefix and source name the sink accepts (sink.ts validates both). */
export const MAX_PREFIX_CHARS = 64;
export const MAX_SOURCE_CHARS = 64;
/**
 * Room one trade's XADD + PUBLISH can take, generously: each of stream key, channel, JSON symbol ≤ prefix
 * + symbol + 25 chars; the source name 3 times; 3 prices and a fractional timestamp ≤ 29 bytes each as
 * arguments; the rest (field names, IDs, integers, ISO time, RESP framing) under 400 bytes.
 */
export const MAX_TICK_BYTES = 3 * (MAX_PREFIX_CHARS + SYMBOL_MAX_CHARS + 25) + 3 * MAX_SOURCE_CHARS + 4 * 29 + 400;

export class TradeWriter {
  readonly #prefix: string;
  readonly #trim: '~' | '=';
  /** per symbol id: `*22 XADD <key> MINID ~` (first XADD of the stream in a batch), `*19 XADD <key>`, `{"symbol":"<SYM>","price":` */
  readonly #xaddHead: Buffer[] = [];
  readonly #xaddHeadNoTrim: Buffer[] = [];
  readonly #jsonHead: Buffer[] = [];
  /** Batch in which each stream got its MINID. */
  readonly #trimGen: Float64Array;
  #gen = 0;
  #minArg: Buffer = encodeArg('0');
  /** per source id: `source <name>` arguments, `*3 PUBLISH <channel>`, `,"source":"<name>"}` */
  readonly #sourceTail: Buffer[] = [];
  readonly #publishHead: Buffer[] = [];
  readonly #jsonTail: Buffer[] = [];
  // digits of the last millisecond written
  #msVal = -1;
  #msText = new Uint8Array(1);
  // ISO 8601 text of the last second written: `YYYY-MM-DDTHH:MM:SS`
  #isoSec = -1;
  #isoPrefix = '';
  readonly #isoPrefixBytes = Buffer.alloc(19);

  /** `symbolCapacity`: symbol ids are 1..symbolCapacity. */
  constructor(prefix: string, trim: '~' | '=', symbolCapacity: number) {
    this.#prefix = prefix;
    this.#trim = trim;
    this.#trimGen = new Float64Array(symbolCapacity + 1).fill(-1);
  }

  hasSymbol(id: number): boolean {
    return this.#xaddHead[id] !== undefined;
  }

  addSymbol(id: number, symbol: string): void {
    const key = `${this.#prefix}ticks:${symbol}`;
    this.#xaddHead[id] = latin1(`*22\r\n$4\r\nXADD\r\n$${key.length}\r\n${key}\r\n$5\r\nMINID\r\n$1\r\n${this.#trim}\r\n`);
    this.#xaddHeadNoTrim[id] = latin1(`*19\r\n$4\r\nXADD\r\n$${key.length}\r\n${key}\r\n`);
    this.#jsonHead[id] = Buffer.from(`{"symbol":${JSON.stringify(symbol)},"price":`, 'utf8');
  }

  hasSource(src: number): boolean {
    return this.#sourceTail[src] !== undefined;
  }

  addSource(src: number, name: string): void {
    const channel = `${this.#prefix}market_data:${name}:trades`;
    this.#sourceTail[src] = latin1(`$6\r\nsource\r\n$${name.length}\r\n${name}\r\n`);
    this.#publishHead[src] = latin1(`*3\r\n$7\r\nPUBLISH\r\n$${channel.length}\r\n${channel}\r\n`);
    this.#jsonTail[src] = latin1(`,"source":"${name}"}`);
  }

  /** A new batch: the first XADD of each stream in it trims the stream to IDs ≥ `minIdMs`. */
  beginBatch(minIdMs: number): void {
    this.#gen++;
    this.#minArg = encodeArg(String(minIdMs));
  }

  /**
   * Write the XADD (and with `publish` the PUBLISH) of the TRADE record at byte `b` of `v` at `o` of `buf`,
   * which has room for MAX_TICK_BYTES; returns the new end. The record's symbol `sym` and its source are
   * added. Only integers and objects cross the calls below (see resp.ts fill32).
   */
  write(buf: Uint8Array, o: number, v: SlotViews, b: number, sym: number, publish: boolean): number {
    const f64 = v.f64, u32 = v.u32;
    const ts = f64[(b + 8) >> 3]!;
    const ms = Math.floor(ts / 1000);
    const us = Math.floor(ts - ms * 1000) | 0;
    const src = v.u8[b + 1]!;
    const seq = u32[(b + 4) >> 2]!;
    const size = u32[(b + 40) >> 2]!;
    const flags = u32[(b + 44) >> 2]!;
    const side = (flags & TradeFlag.SIDE_BUY) !== 0 ? 1 : (flags & TradeFlag.SIDE_SELL) !== 0 ? 2 : 0;
    if (ms !== this.#msVal) this.#newMs(ms);
    const msText = this.#msText;
    const msLen = msText.length;
    // MINID on the first XADD of each stream in a batch: trimming once per batch is as good as per entry,
    // and an XADD without it costs Redis 20-30 % less (measured with redis-benchmark)
    if (this.#trimGen[sym] !== this.#gen) {
      this.#trimGen[sym] = this.#gen;
      o = putBytes(buf, o, this.#xaddHead[sym]!);
      o = putBytes(buf, o, this.#minArg);
    } else {
      o = putBytes(buf, o, this.#xaddHeadNoTrim[sym]!);
    }
    // ID <ms>-<n> (ids.ts), n = hi·10^8 + lo
    const n = us * N_US_FACTOR + src * N_SOURCE_FACTOR + seq;
    const hi = Math.floor(n / 1e8) | 0;
    const lo = (n - hi * 1e8) | 0;
    const dn = hi > 0 ? digits32(hi) + 8 : digits32(lo);
    o = putLenHeader(buf, o, msLen + 1 + dn);
    buf.set(msText, o);
    o += msLen;
    buf[o++] = 45; // '-'
    if (hi > 0) {
      fill32(buf, o, o + dn - 8, hi);
      fill32(buf, o + dn - 8, o + dn, lo);
    } else {
      fill32(buf, o, o + dn, lo);
    }
    o += dn;
    buf[o] = CRLF0; buf[o + 1] = CRLF1; o += 2;
    o = putBytes(buf, o, F_PRICE);
    const priceArg = o;
    o = putNumArgAt(buf, o, f64, (b + 16) >> 3);
    o = putBytes(buf, o, F_SIZE); o = putU32Arg(buf, o, size);
    o = putBytes(buf, o, F_BID); o = putNumArgAt(buf, o, f64, (b + 24) >> 3);
    o = putBytes(buf, o, F_ASK); o = putNumArgAt(buf, o, f64, (b + 32) >> 3);
    o = putBytes(buf, o, side === 1 ? F_SIDE_B : side === 2 ? F_SIDE_S : F_SIDE_NONE);
    o = putBytes(buf, o, F_SEQ); o = putU32Arg(buf, o, seq);
    o = putBytes(buf, o, F_TS_US);
    if (ts === Math.floor(ts) && ts < 9e15 && ms > 0) { // the digits of ms, then the 3 of µs
      o = putLenHeader(buf, o, msLen + 3);
      buf.set(msText, o);
      o += msLen;
      fill32(buf, o, o + 3, us);
      o += 3;
      buf[o] = CRLF0; buf[o + 1] = CRLF1; o += 2;
    } else {
      o = putNumArgAt(buf, o, f64, (b + 8) >> 3);
    }
    o = putBytes(buf, o, this.#sourceTail[src]!);
    if (!publish) return o;
    o = putBytes(buf, o, this.#publishHead[src]!);
    const head = o; // `$NNN\r\n`: three digits reserved for the JSON's length, fixed up at the end
    o += 6;
    const body = o;
    o = putBytes(buf, o, this.#jsonHead[sym]!);
    const price = f64[(b + 16) >> 3]!;
    if (price - price === 0) { // finite: the same text as the XADD's price argument, copied from there (else null, as JSON.stringify)
      let k = priceArg + 2;
      while (buf[k - 1] !== CRLF1) k++; // skip `$<len>\r\n`
      while (buf[k] !== CRLF0) buf[o++] = buf[k++]!;
    } else {
      o = putBytes(buf, o, JSON_NULL);
    }
    o = putBytes(buf, o, JSON_SIZE);
    o = size < 2_147_483_648 ? putDigits32(buf, o, size) : putDigits(buf, o, size);
    o = putBytes(buf, o, side === 1 ? JSON_SIDE_B : side === 2 ? JSON_SIDE_S : JSON_SIDE_NONE);
    // ISO 8601 timestamp: the second's text, then the 6 digits of µs
    const sec = Math.floor(ts / 1_000_000);
    if (sec !== this.#isoSec) this.#isoSecond(sec);
    o = putBytes(buf, o, this.#isoPrefixBytes);
    buf[o] = 46; // '.'
    fill32(buf, o + 1, o + 7, Math.floor(ts - sec * 1_000_000) | 0);
    buf[o + 7] = 90; // 'Z'
    o += 8;
    o = putBytes(buf, o, JSON_TS_MS);
    buf.set(msText, o);
    o += msLen;
    o = putBytes(buf, o, this.#jsonTail[src]!);
    return fixLenHeader(buf, head, body, o);
  }

  #newMs(ms: number): void {
    this.#msVal = ms;
    const d = digits(ms);
    if (this.#msText.length !== d) this.#msText = new Uint8Array(d); // exact length, for `set` (13 digits from 2001 to 2286)
    putDigits(this.#msText, 0, ms);
  }

  /** ISO 8601 UTC with 6 fractional digits (`2025-11-11T14:30:00.123456Z`); the second's text is cached. */
  iso(tsMicros: number): string {
    const sec = Math.floor(tsMicros / 1_000_000);
    if (sec !== this.#isoSec) this.#isoSecond(sec);
    const frac = Math.floor(tsMicros - sec * 1_000_000);
    return `${this.#isoPrefix}.${frac < 100_000 ? String(frac).padStart(6, '0') : frac}Z`;
  }

  #isoSecond(sec: number): void {
    this.#isoSec = sec;
    this.#isoPrefix = new Date(sec * 1000).toISOString().slice(0, 19);
    this.#isoPrefixBytes.write(this.#isoPrefix, 0, 'latin1');
  }
}
