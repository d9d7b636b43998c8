/**
 * `GET /api/v1/depth?symbol=&levels=10`: the order book's best `levels` per side (1..1000), read on this
 * thread from the book the engine keeps (no I/O). Answer: `{ symbol, ts, version, bids: [{price, quantity,
 * orders}], asks: [...], bid_levels, ask_levels, crossed }`, best level first. 404 when the symbol has no book.
 */
import { microsToIso } from '../../engine/latest/latest-table.ts';
import { Query } from '../http/request.ts';
import { ApiError, sendJson } from '../http/respond.ts';
import { resolveSymbol, type RouteHandler, type Services } from './context.ts';

export function depthRoute(s: Services): RouteHandler {
  return (res, _req, ctx) => {
    const q = new Query(ctx.query);
    const sym = q.required('symbol');
    const levels = q.int('levels', 10, 1, 1000);
    const meta = resolveSymbol(s, ctx, sym);
    const book = s.deps.book(meta.id);
    if (book === null || book === undefined) throw new ApiError(404, 'NO_BOOK', `no order book for ${meta.symbol} (no depth source for it)`);
    const snap = book.snapshot(levels);
    ctx.rows = snap.bids.length + snap.asks.length;
    sendJson(res, ctx, 200, {
      symbol: meta.symbol, ts: microsToIso(snap.tsMicros), version: snap.version, bids: snap.bids, asks: snap.asks,
      bid_levels: snap.bidLevels, ask_levels: snap.askLevels, crossed: snap.crossed,
    });
  };
}
