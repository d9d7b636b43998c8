/**
 * `GET /api/v1/ticks/latest?symbols=A,B`: last trade and top of book per symbol straight from the latest
 * table in shared memory (seqlock read): no I/O, no await. Symbols: contract names or roots (front month).
 * Answer: `{ "data": [ { symbol, ts, ts_us, ts_ms, price, size, side, seq, bid, bid_size, ask, ask_size,
 * quote_ts, trade_count, quote_count, updates, last_update_ts } ] }` in the order asked; a symbol with no
 * data yet has nulls and `updates: 0`.
 */
import type { LatestJson } from '../../engine/latest/latest-table.ts';
import { Query } from '../http/request.ts';
import { sendJson } from '../http/respond.ts';
import { resolveSymbol, type RouteHandler, type Services } from './context.ts';

function empty(symbol: string): LatestJson {
  return {
    symbol, ts: null, ts_us: null, ts_ms: null, price: null, size: null, side: null, seq: null, bid: null, bid_size: null, ask: null,
    ask_size: null, quote_ts: null, trade_count: 0, quote_count: 0, updates: 0, last_update_ts: null,
  };
}

export function latestRoute(s: Services): RouteHandler {
  const latest = s.deps.latest;
  return (res, _req, ctx) => {
    const syms = new Query(ctx.query).symbols();
    const data: LatestJson[] = [];
    for (const q of syms) {
      const meta = resolveSymbol(s, ctx, q);
      const row = meta.id <= latest.capacity ? latest.readJson(meta.id, meta.symbol) : null;
      data.push(row ?? empty(meta.symbol));
    }
    ctx.rows = data.length;
    sendJson(res, ctx, 200, { data });
  };
}
