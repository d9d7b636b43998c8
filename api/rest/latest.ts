/**
 * `GET /api/v1/ticks/latest?symbols=A,B`: last trade and top of book per symbol straight from the latest
 * table in shared memory (seqlock read): no I/O, no await. Symbols: contract names or roots (front month).
 * Answer: `{ "data": [ { symbol, ts, ts_us, ts_ms, price, size, side, seq, bid, bid_size, ask, ask_size,
 * quote_ts, trade_count, quote_count, updates, last_update_ts } ] }` in the order asked (the shape of
 * `LatestTable.readJson`); a symbol with no data yet has nulls and `updates: 0`.
 *
 * The text is built here from one reused `LatestSnapshot` (no intermediate object, one string), and ISO
 * times reuse the formatted second (`IsoCache`): this is the route bots poll, so it is kept cheap.
 *
 * Answer cache (`EntryCache`): bots poll far more often than most symbols change, so each symbol's entry
 * text (and, for the common one-symbol poll once it is asked again, the whole body as UTF-8 bytes) is kept with the identity of the
 * snapshot it was built from. Every request still does the seqlock read (the latest table stays the source
 * of truth); the cached text is reused only when that fresh snapshot is the same write as the cached one:
 * same slot version AND same update count. The update count is a float64 that every write increments
 * (exact to 2^53), so equality cannot come from the int32 version wrapping around; a writer that died
 * mid-write leaves the version odd, which `read` never accepts. So a cached answer is never stale: it is
 * byte for byte what building the text from this request's snapshot would give. The symbol list of a query
 * string is kept too (a pure function of the string), and the one-symbol path allocates next to nothing
 * (the route is polled tens of thousands of times a second: garbage there is GC pauses in its p99).
 */
import { engineError } from '../../engine/errors.ts';
import { LatestSnapshot, READ_JSON_ROUNDS } from '../../engine/latest/latest-table.ts';
import type { SymbolMeta } from '../../engine/symbols/registry.ts';
import { Query } from '../http/request.ts';
import { sendJsonText } from '../http/respond.ts';
import { resolveSymbol, type RouteHandler, type Services } from './context.ts';

/** ISO 8601 UTC with 6 fractional digits (as microsToIso), reusing the formatted date across calls. */
export class IsoCache {
  #day = NaN;
  #prefix = '';

  iso(us: number): string {
    const day = Math.floor(us / 86_400_000_000);
    if (day !== this.#day) {
      this.#day = day;
      this.#prefix = new Date(day * 86_400_000).toISOString().slice(0, 11); // YYYY-MM-DDT
    }
    const inDay = us - day * 86_400_000_000; // 0 ≤ inDay < 86 400 000 000
    const sec = Math.floor(inDay / 1_000_000);
    const h = Math.floor(sec / 3600);
    const m = Math.floor((sec - h * 3600) / 60);
    const s = sec - h * 3600 - m * 60;
    return `${this.#prefix}${h < 10 ? '0' : ''}${h}:${m < 10 ? '0' : ''}${m}:${s < 10 ? '0' : ''}${s}.${String(Math.floor(inDay - sec * 1_000_000)).padStart(6, '0')}Z`;
  }

  /** JSON value: a quoted ISO time, or null for NaN/infinite. */
  json(us: number): string {
    return Number.isFinite(us) ? `"${this.iso(us)}"` : 'null';
  }
}

const num = (x: number): string => (Number.isFinite(x) ? String(x) : 'null');

/** One entry as JSON text (same fields and values as LatestTable.readJson, or the empty entry). */
export function latestEntryText(s: LatestSnapshot, symbolJson: string, iso: IsoCache): string {
  if (s.updateCount === 0) {
    return `{"symbol":${symbolJson},"ts":null,"ts_us":null,"ts_ms":null,"price":null,"size":null,"side":null,"seq":null,"bid":null,` +
      `"bid_size":null,"ask":null,"ask_size":null,"quote_ts":null,"trade_count":0,"quote_count":0,"updates":0,"last_update_ts":null}`;
  }
  const hasTrade = !Number.isNaN(s.price);
  const t = s.tradeTsMicros;
  const tNum = !Number.isNaN(t);
  return `{"symbol":${symbolJson},"ts":${iso.json(t)},"ts_us":${tNum ? num(t) : 'null'},"ts_ms":${tNum ? num(Math.floor(t / 1000)) : 'null'},` +
    `"price":${num(s.price)},"size":${hasTrade ? num(s.size) : 'null'},"side":${s.side === 1 ? '"buy"' : s.side === 2 ? '"sell"' : 'null'},` +
    `"seq":${hasTrade ? num(s.seq) : 'null'},"bid":${num(s.bid)},"bid_size":${Number.isNaN(s.bid) ? 'null' : num(s.bidSize)},` +
    `"ask":${num(s.ask)},"ask_size":${Number.isNaN(s.ask) ? 'null' : num(s.askSize)},"quote_ts":${iso.json(s.quoteTsMicros)},` +
    `"trade_count":${num(s.tradeCount)},"quote_count":${num(s.quoteCount)},"updates":${num(s.updateCount)},"last_update_ts":${iso.json(s.lastTsMicros)}}`;
}

const UTF8 = new TextEncoder();

/**
 * Per symbol id: the entry text built from one snapshot, and the one-symbol body as bytes, keyed by that
 * snapshot's (version, update count) and the symbol name it was rendered under (see the header).
 */
export class EntryCache {
  readonly #version: Float64Array; // NaN: nothing cached (NaN equals nothing)
  readonly #updates: Float64Array;
  readonly #symbol: string[];
  readonly #text: string[];
  readonly #body: (Uint8Array | null)[];
  /** Answers built (cache misses) and reused (hits), for tests and the bench. */
  builds = 0;
  hits = 0;

  constructor(capacity: number) {
    this.#version = new Float64Array(capacity + 1).fill(NaN);
    this.#updates = new Float64Array(capacity + 1).fill(NaN);
    this.#symbol = new Array<string>(capacity + 1).fill('');
    this.#text = new Array<string>(capacity + 1).fill('');
    this.#body = new Array<Uint8Array | null>(capacity + 1).fill(null);
  }

  /** The entry text of `s` (a consistent snapshot of slot `id`) under `symbol`, reusing the last one when it is the same write. */
  text(id: number, s: LatestSnapshot, symbol: string, iso: IsoCache): string {
    if (this.#version[id] === s.version && this.#updates[id] === s.updateCount && this.#symbol[id] === symbol) {
      this.hits++;
      return this.#text[id] as string;
    }
    this.builds++;
    const t = latestEntryText(s, JSON.stringify(symbol), iso);
    this.#version[id] = s.version;
    this.#updates[id] = s.updateCount;
    this.#symbol[id] = symbol;
    this.#text[id] = t;
    this.#body[id] = null;
    return t;
  }

  /** `{"data":[<entry>]}` as UTF-8, for the entry the last `text(id, ...)` returned. */
  body(id: number): Uint8Array {
    let b = this.#body[id];
    if (b === null || b === undefined) {
      b = UTF8.encode(`{"data":[${this.#text[id] as string}]}`); // its own buffer (not a slice of Node's Buffer pool)
      this.#body[id] = b;
    }
    return b;
  }
}

/** Distinct query strings whose parsed symbol list is kept (a bot polls the same few URLs); past this the map starts over. */
const PARSED_QUERIES = 256;

export function latestRoute(s: Services): RouteHandler {
  const latest = s.deps.latest;
  const snap = new LatestSnapshot();
  const iso = new IsoCache();
  const cache = new EntryCache(latest.capacity);
  // raw query string -> its symbol list: a pure function of the string (a query that throws is never stored)
  const parsed = new Map<string, readonly string[]>();
  const symbolsOf = (query: string): readonly string[] => {
    let syms = parsed.get(query);
    if (syms === undefined) {
      syms = new Query(query).symbols();
      if (parsed.size >= PARSED_QUERIES) parsed.clear();
      parsed.set(query, syms);
    }
    return syms;
  };
  /** A consistent snapshot of the slot into `snap` (the seqlock read; every request does it). */
  const readSlot = (meta: SymbolMeta): void => {
    let ok = false;
    for (let round = 0; round < READ_JSON_ROUNDS && !ok; round++) ok = latest.read(meta.id, snap);
    if (!ok) throw engineError('ENGINE_ERR_TIMEOUT', `latest slot of ${meta.symbol} stayed mid-write`, { symbol: meta.symbol });
  };
  return (res, _req, ctx) => {
    const syms = symbolsOf(ctx.query);
    if (syms.length === 1) { // the common poll: the whole body can come from the cache
      const meta = resolveSymbol(s, ctx, syms[0] as string);
      if (meta.id <= latest.capacity) {
        readSlot(meta);
        const builds = cache.builds;
        const entry = cache.text(meta.id, snap, meta.symbol, iso);
        ctx.rows = 1;
        if (cache.builds !== builds) { // a new write: send the text (its bytes are made only if a later poll reuses it)
          sendJsonText(res, ctx, 200, `{"data":[${entry}]}`);
          return;
        }
        sendJsonText(res, ctx, 200, cache.body(meta.id));
        return;
      }
    }
    let text = '{"data":[';
    for (let i = 0; i < syms.length; i++) {
      const meta = resolveSymbol(s, ctx, syms[i] as string);
      let entry: string;
      if (meta.id <= latest.capacity) {
        readSlot(meta);
        entry = cache.text(meta.id, snap, meta.symbol, iso);
      } else {
        snap.updateCount = 0;
        entry = latestEntryText(snap, JSON.stringify(meta.symbol), iso);
      }
      text += (i === 0 ? '' : ',') + entry;
    }
    ctx.rows = syms.length;
    sendJsonText(res, ctx, 200, `${text}]}`);
  };
}
