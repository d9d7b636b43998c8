/**
 * `GET /api/v1/ticks/realtime?symbols=A,B&limit=100[&since=]`: the newest `limit` trades per symbol from the
 * hot window (shared memory, no I/O), or with `since` (ISO 8601 or Unix s/ms/µs) the first `limit` trades at
 * or after it. Answer: `{ "data": [ { symbol, held_from, newest_ts, more, ticks: [ {symbol, ts, ts_us, ts_ms,
 * price, size, bid, ask, side, flags, seq, source} ] } ] }`, ticks oldest first. `held_from`: the window
 * holds every trade from this time on (older ones: /historical). `more`: rows beyond this answer exist.
 */
import { HOT_BUSY } from '../../engine/hot/hot-window.ts';
import { toObjects } from '../../engine/hot/hot-columns.ts';
import { microsToIso } from '../../engine/latest/latest-table.ts';
import { Query } from '../http/request.ts';
import { ApiError, sendJson } from '../http/respond.ts';
import { resolveSymbol, type RouteHandler, type Services } from './context.ts';

export const REALTIME_MAX_LIMIT = 10_000;

export function realtimeRoute(s: Services): RouteHandler {
  return (res, _req, ctx) => {
    const hot = s.deps.hot;
    const q = new Query(ctx.query);
    const syms = q.symbols();
    const limit = q.int('limit', 100, 1, REALTIME_MAX_LIMIT);
    const since = q.time('since');
    if (hot === null) throw new ApiError(503, 'NO_HOT_WINDOW', 'the hot window is not running');
    const page = s.hotPage;
    const data: unknown[] = [];
    let rows = 0;
    for (const sym of syms) {
      const meta = resolveSymbol(s, ctx, sym);
      if (meta.id > hot.symbols) {
        data.push({ symbol: meta.symbol, held_from: null, newest_ts: null, more: false, ticks: [] });
        continue;
      }
      let r = HOT_BUSY;
      for (let attempt = 0; attempt < 5 && r === HOT_BUSY; attempt++) {
        r = since === undefined ? hot.newest(meta.id, limit, page) : hot.since(meta.id, since, limit, page);
      }
      if (r === HOT_BUSY) throw new ApiError(503, 'BUSY', 'the hot window is being rewritten too fast to read; retry');
      const ticks = toObjects(page, meta.symbol);
      rows += ticks.length;
      data.push({
        symbol: meta.symbol, held_from: microsToIso(page.heldFromMicros), newest_ts: microsToIso(page.newestTsMicros), more: page.more, ticks,
      });
    }
    ctx.rows = rows;
    sendJson(res, ctx, 200, { data });
  };
}
