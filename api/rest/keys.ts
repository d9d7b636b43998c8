/**
 * Key administration over HTTP (admin scope):
 * - `GET /api/v1/keys`: every key's public record (never a secret or hash);
 * - `POST /api/v1/keys` `{ name, scopes: [...], symbols?: [...], rate?: n }`: creates a key, answers it once
 *   (`{ key, info }`);
 * - `DELETE /api/v1/keys/:id`: revokes it;
 * - `GET /api/v1/keys/:id/history?limit=100`: the key's query history, newest first.
 */
import { isEngineError } from '../../engine/errors.ts';
import type { KeyAdmin, KeySpec } from '../deps.ts';
import { Query, parseJsonBody, readBody } from '../http/request.ts';
import { ApiError, sendJson } from '../http/respond.ts';
import type { RouteHandler, Services } from './context.ts';

const ID_RE = /^[0-9a-f]{12}$/;

function admin(s: Services): KeyAdmin {
  const a = s.deps.auth as Partial<KeyAdmin>;
  if (typeof a.list !== 'function' || typeof a.create !== 'function' || typeof a.revoke !== 'function') {
    throw new ApiError(404, 'NOT_FOUND', 'key administration is not available on this server');
  }
  return a as KeyAdmin;
}

export function listKeysRoute(s: Services): RouteHandler {
  return (res, _req, ctx) => {
    const keys = admin(s).list();
    ctx.rows = keys.length;
    sendJson(res, ctx, 200, { data: keys });
  };
}

export function createKeyRoute(s: Services): RouteHandler {
  return async (res, req, ctx) => {
    const a = admin(s);
    const body = parseJsonBody(await readBody(res, req, ctx, s.maxBodyBytes));
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, 'BAD_REQUEST', 'body must be a JSON object {name, scopes, symbols?, rate?}');
    const b = body as Record<string, unknown>;
    const spec: KeySpec = {
      name: b.name as string, scopes: b.scopes as string[],
      symbols: (b.symbols ?? null) as string[] | null, ratePerSec: (b.rate ?? b.ratePerSec ?? 0) as number,
    };
    try {
      const created = await a.create(spec);
      ctx.rows = 1;
      sendJson(res, ctx, 200, created);
    } catch (err) {
      if (isEngineError(err, 'ENGINE_ERR_INVALID_ARG')) throw new ApiError(400, 'BAD_REQUEST', err.message);
      throw err;
    }
  };
}

export function revokeKeyRoute(s: Services): RouteHandler {
  return async (res, req, ctx) => {
    const id = req.getParameter(0) ?? '';
    if (!ID_RE.test(id)) throw new ApiError(400, 'BAD_REQUEST', 'a key id is 12 hex characters');
    const ok = await admin(s).revoke(id);
    if (!ok) throw new ApiError(404, 'NOT_FOUND', `no active key ${id}`);
    sendJson(res, ctx, 200, { revoked: id });
  };
}

export function keyHistoryRoute(s: Services): RouteHandler {
  return (res, req, ctx) => {
    const id = req.getParameter(0) ?? '';
    if (!ID_RE.test(id)) throw new ApiError(400, 'BAD_REQUEST', 'a key id is 12 hex characters');
    const limit = new Query(ctx.query).int('limit', 100, 1, 10_000);
    if (!admin(s).list().some((k) => k.id === id)) throw new ApiError(404, 'NOT_FOUND', `no key ${id}`);
    const data = s.history.list(id, limit);
    ctx.rows = data.length;
    sendJson(res, ctx, 200, { key: id, data });
  };
}
