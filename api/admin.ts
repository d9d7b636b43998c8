/**
 * Admin actions of the front end (admin-scoped key): restart a source or stage.
 *   POST /api/v1/admin/sources/:name/restart   → 202 { restarting }, 404 unknown stage, 409 cannot restart now
 * The restart itself runs through the Supervisor (engine/supervisor.ts `restart`), which does not count it
 * as a crash.
 */
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { AttachContext } from './deps.ts';
import { ApiError, sendError, sendJson, type ReqCtx } from './http/respond.ts';

export interface StageControl {
  stageNames(): string[];
  restart(name: string): Promise<void>;
}

const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export function adminAttach(stages: StageControl): (app: TemplatedApp, ctx: AttachContext) => void {
  return (app, ctx) => {
    app.post('/api/v1/admin/sources/:name/restart', (res: HttpResponse, req: HttpRequest) => {
      const rc: ReqCtx = { aborted: false };
      res.onAborted(() => { rc.aborted = true; });
      try {
        const raw = req.getParameter(0) ?? '';
        const auth = req.getHeader('authorization');
        const token = /^bearer\s+(\S+)$/i.exec(auth)?.[1];
        ctx.authorize(token, Buffer.from(res.getRemoteAddressAsText()).toString(), 'admin');
        let name: string;
        try { name = decodeURIComponent(raw); } catch { throw new ApiError(400, 'BAD_REQUEST', 'the stage name is not valid URL encoding'); }
        if (!NAME_RE.test(name) || !stages.stageNames().includes(name)) throw new ApiError(404, 'NOT_FOUND', `no source or stage named ${name.slice(0, 64)}`);
        stages.restart(name).then(
          () => { sendJson(res, rc, 202, { restarting: name }); },
          (err: unknown) => { sendError(res, rc, new ApiError(409, 'CANNOT_RESTART', (err as Error).message)); },
        );
      } catch (err) {
        sendError(res, rc, err);
      }
    });
  };
}
