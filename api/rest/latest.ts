/**
 * `GET /api/v1/ticks/latest?symbols=A,B`: last trade and top of book per symbol straight from the latest
 * table in shared memory (seqlock read): no I/O, no await. Symbols: contract names or roots (front month).
 * Answer: `{ "data": [ { symbol, ts, ts_us, ts_ms, price, size, side, seq, bid, bid_size, ask, ask_size,
 * quote_ts, trade_count, quote_count, updates, last_update_ts } ] }` in the order asked (the shape of
 * `LatestTable.readJson`); a symbol with no data yet has nulls and `updates: 0`.
 *
 * The text is built here from one reused `LatestSnapshot` (no intermediate object, one string), and ISO
 * times reuse the formatted second (`IsoCache`): this is the route bots poll, so it is kept cheap.
 */
import { engineError } from '../../engine/errors.ts';
import { LatestSnapshot, READ_JSON_ROUNDS } from '../../engine/latest/latest-table.ts';
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

export function latestRoute(s: Services): RouteHandler {
  const latest = s.deps.latest;
  const snap = new LatestSnapshot();
  const iso = new IsoCache();
  const quoted = new Map<string, string>();
  return (res, _req, ctx) => {
    const syms = new Query(ctx.query).symbols();
    let text = '{"data":[';
    for (let i = 0; i < syms.length; i++) {
      const meta = resolveSymbol(s, ctx, syms[i] as string);
      let q = quoted.get(meta.symbol);
      if (q === undefined) { q = JSON.stringify(meta.symbol); quoted.set(meta.symbol, q); }
      if (meta.id <= latest.capacity) {
        let ok = false;
        for (let round = 0; round < READ_JSON_ROUNDS && !ok; round++) ok = latest.read(meta.id, snap);
        if (!ok) throw engineError('ENGINE_ERR_TIMEOUT', `latest slot of ${meta.symbol} stayed mid-write`, { symbol: meta.symbol });
      } else {
        snap.updateCount = 0;
      }
      text += (i === 0 ? '' : ',') + latestEntryText(snap, q, iso);
    }
    ctx.rows = syms.length;
    sendJsonText(res, ctx, 200, `${text}]}`);
  };
}
