/**
 * Large answers with back-pressure (uWS rules): a chunked stream whose `write` resolves only when uWS has
 * room again (`onWritable`), and a known-size body sent with `tryEnd` + `onWritable` from the reported
 * offset. Both stop as soon as the client goes away (`ctx.aborted`).
 */
import type { HttpResponse } from 'uWebSockets.js';
import { finish, writeHead, type ReqCtx } from './respond.ts';

/** A chunked (Transfer-Encoding: chunked) answer written piece by piece. */
export class ResponseStream {
  readonly #res: HttpResponse;
  readonly #ctx: ReqCtx;
  #started = false;
  #ended = false;
  #wait: (() => void) | null = null;
  /** Bytes handed to uWS so far. */
  bytes = 0;
  /** Times a write had to wait for the socket to drain. */
  stalls = 0;

  constructor(res: HttpResponse, ctx: ReqCtx) {
    this.#res = res;
    this.#ctx = ctx;
    const prev = ctx.onAbort;
    ctx.onAbort = () => { prev?.(); this.wake(); };
  }

  get aborted(): boolean { return this.#ctx.aborted; }
  get started(): boolean { return this.#started; }

  /** Call from the abort handler so a pending `write` resolves. */
  wake(): void {
    const w = this.#wait;
    this.#wait = null;
    if (w !== null) w();
  }

  start(status: number, contentType: string, headers?: Readonly<Record<string, string>>): void {
    if (this.#ctx.aborted || this.#started) return;
    this.#started = true;
    this.#res.cork(() => { writeHead(this.#res, this.#ctx, status, contentType, headers); });
  }

  /** Write one piece; resolves when the socket can take more (false: the client is gone). */
  async write(chunk: string | Uint8Array): Promise<boolean> {
    if (this.#ctx.aborted) return false;
    const res = this.#res;
    let ok = true;
    const len = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
    if (len === 0) return true;
    res.cork(() => { ok = res.write(chunk); });
    this.bytes += len;
    if (ok) return !this.#ctx.aborted;
    // uWS buffered the chunk but its buffer is over the limit: wait until it drained
    this.stalls++;
    await new Promise<void>((resolve) => {
      this.#wait = resolve;
      res.onWritable(() => {
        this.wake();
        return true;
      });
    });
    return !this.#ctx.aborted;
  }

  end(status = 200): void {
    if (this.#ended) return;
    this.#ended = true;
    if (!this.#ctx.aborted) this.#res.cork(() => { this.#res.end(); });
    finish(this.#ctx, this.#ctx.aborted ? 499 : status);
  }
}

/**
 * Send a known-size body with back-pressure: `tryEnd` the whole buffer; when uWS cannot take it all, send
 * the rest from the offset it reports in `onWritable`. Resolves when the body is out (or the client left).
 */
export function sendBuffer(res: HttpResponse, ctx: ReqCtx, status: number, contentType: string, body: Buffer, headers?: Readonly<Record<string, string>>): Promise<void> {
  return new Promise((resolve) => {
    if (ctx.aborted) { finish(ctx, 499); resolve(); return; }
    const total = body.length;
    let startOffset = 0;
    let done = false;
    const complete = (): void => {
      if (done) return;
      done = true;
      finish(ctx, ctx.aborted ? 499 : status);
      resolve();
    };
    let ok = false;
    let responded = false;
    res.cork(() => {
      writeHead(res, ctx, status, contentType, headers);
      startOffset = res.getWriteOffset();
      [ok, responded] = res.tryEnd(body, total);
    });
    if (responded || ok) { complete(); return; }
    const prev = ctx.onAbort;
    ctx.onAbort = () => { prev?.(); complete(); };
    res.onWritable((offset) => {
      if (ctx.aborted) { complete(); return true; }
      const sent = offset - startOffset;
      const [ok2, responded2] = res.tryEnd(body.subarray(sent), total);
      if (responded2) complete();
      return ok2;
    });
  });
}
