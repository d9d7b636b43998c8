/**
 * uWebSockets.js front end on the engine's main thread. Routes are listed here and nowhere else; the last
 * one answers 404 in JSON. Handlers never block: status reads come from shared memory and counters.
 */
import { App, us_listen_socket_close, us_socket_local_port, type HttpRequest, type HttpResponse, type TemplatedApp, type us_listen_socket } from 'uWebSockets.js';
import { engineError } from '../engine/errors.ts';
import { ApiError, sendError, sendJson, type ReqCtx } from './http/respond.ts';

export interface StatusSource {
  /** Everything `/api/v1/status` shows (allocates; cold path, called per request). */
  status(): Record<string, unknown>;
  /** True once every stage is running. */
  ready(): boolean;
}

export interface ApiServer {
  readonly port: number;
  close(): void;
}

function route(handler: (res: HttpResponse, req: HttpRequest, ctx: ReqCtx) => void) {
  return (res: HttpResponse, req: HttpRequest): void => {
    const ctx: ReqCtx = { aborted: false };
    res.onAborted(() => { ctx.aborted = true; });
    try {
      handler(res, req, ctx);
    } catch (err) {
      sendError(res, ctx, err);
    }
  };
}

export function buildApp(src: StatusSource): TemplatedApp {
  return App()
    .get('/healthz', route((res, _req, ctx) => sendJson(res, ctx, 200, { ok: true })))
    .get('/readyz', route((res, _req, ctx) => {
      if (src.ready()) sendJson(res, ctx, 200, { ready: true });
      else sendJson(res, ctx, 503, { ready: false, error: { code: 'NOT_READY', message: 'the engine is starting or a stage is down' } });
    }))
    .get('/api/v1/status', route((res, _req, ctx) => sendJson(res, ctx, 200, src.status())))
    .any('/*', route((_res, req) => {
      throw new ApiError(404, 'NOT_FOUND', `no route for ${req.getMethod().toUpperCase()} ${req.getUrl()}`);
    }));
}

/** Listen on host:port (port 0 picks a free one). */
export function listen(app: TemplatedApp, host: string, port: number): Promise<ApiServer> {
  return new Promise((resolve, reject) => {
    app.listen(host, port, (sock: us_listen_socket | false) => {
      if (!sock) { reject(engineError('ENGINE_ERR_CONFIG', `cannot listen on ${host}:${port} (port in use or address not available)`, { host, port })); return; }
      resolve({ port: us_socket_local_port(sock), close: () => us_listen_socket_close(sock) });
    });
  });
}
