/**
 * `GET /api/v1/gaps` and `GET /api/v1/quarantine` (`[?symbol=][&start_time=][&end_time=][&limit=100]`):
 * what the validator detected (gaps) or set aside (quarantined records), newest first, from the engine's
 * query functions (`ApiDeps.gaps` / `ApiDeps.quarantine`). A key restricted to some symbols must name one.
 * Answer: `{ "data": [ ... ] }`.
 */
import type { RecordQuery } from '../deps.ts';
import { Query } from '../http/request.ts';
import { ApiError, sendJson } from '../http/respond.ts';
import { resolveSymbol, type RouteHandler, type Services } from './context.ts';

export function recordsRoute(s: Services, which: 'gaps' | 'quarantine'): RouteHandler {
  return async (res, _req, ctx) => {
    const q = new Query(ctx.query);
    const sym = q.str('symbol');
    const fromMicros = q.time('start_time') ?? null;
    const toMicros = q.time('end_time') ?? null;
    const limit = q.int('limit', 100, 1, 10_000);
    if (fromMicros !== null && toMicros !== null && !(toMicros > fromMicros)) throw new ApiError(400, 'BAD_REQUEST', 'end_time must be after start_time');
    let symbol: string | null = null;
    if (sym !== undefined && sym !== '') symbol = resolveSymbol(s, ctx, sym).symbol;
    else if (ctx.principal !== null && ctx.principal.symbols !== null) {
      throw new ApiError(403, 'SYMBOL_NOT_GRANTED', 'this key is restricted to some symbols: name one with symbol=');
    }
    const query: RecordQuery = { symbol, fromMicros, toMicros, limit };
    const rows = await (which === 'gaps' ? s.deps.gaps(query) : s.deps.quarantine(query));
    const data = rows.length > limit ? rows.slice(0, limit) : rows;
    ctx.rows = data.length;
    sendJson(res, ctx, 200, { data });
  };
}
