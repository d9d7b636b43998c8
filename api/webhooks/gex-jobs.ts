/**
 * The background queue of `/gex_history_url` downloads: bounded, `concurrency` at a time, each job a safe
 * download (fetch.ts), the raw file kept under `<rawDir>`, then decompressed and parsed in a worker thread
 * (engine/gex/parse.worker.ts) and stored (engine/gex/store.ts). Jobs are deduplicated by URL without its
 * query string (signed blob URLs differ per click) and ticker.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { spawnWorker } from '../../engine/worker-host.ts';
import { parseGexFile } from '../../engine/gex/snapshot.ts';
import type { GexParseRequest, GexParseResult } from '../../engine/gex/parse-protocol.ts';
import type { GexSnapshot } from '../../engine/gex/snapshot.ts';
import type { GexStore } from '../../engine/gex/store.ts';
import { FetchRefused, safeDownload, type FetchPolicy } from './fetch.ts';

export type GexJobState = 'queued' | 'downloading' | 'parsing' | 'done' | 'failed';

export interface GexJob {
  id: string;
  /** URL without its query string (signatures are not echoed). */
  url: string;
  ticker: string | null;
  category: string | null;
  state: GexJobState;
  error: { code: string; message: string } | null;
  bytes: number;
  gzip: boolean | null;
  snapshots: number;
  added: number;
  duplicates: number;
  rejected: number;
  rawPath: string | null;
  createdAt: string;
  finishedAt: string | null;
}

export interface GexJobsOptions {
  policy: FetchPolicy;
  /** Where raw downloaded files are kept. */
  rawDir: string;
  /** Jobs waiting at most (default 100); more: `submit` returns null (503). */
  maxQueued?: number;
  /** Downloads at once (default 1). */
  concurrency?: number;
  /** Decompressed file size limit (default 512 MiB). */
  maxDecompressedBytes?: number;
  /** Called with the snapshots that became the newest of their ticker (live fan-out, e.g. WsHub.publishGex). */
  onLatest?: (snaps: GexSnapshot[]) => void;
}

const gunzipAsync = promisify(gunzip);
const PARSE_WORKER = new URL('../../engine/gex/parse.worker.ts', import.meta.url);

export class GexJobs {
  readonly #store: GexStore;
  readonly #o: Required<Omit<GexJobsOptions, 'onLatest'>> & Pick<GexJobsOptions, 'onLatest'>;
  readonly #jobs = new Map<string, GexJob>();
  readonly #byKey = new Map<string, string>();
  readonly #queue: { job: GexJob; url: string }[] = [];
  #running = 0;
  #next = 1;
  #closed = false;
  readonly #abort = new AbortController();
  readonly #idleWaiters: (() => void)[] = [];

  constructor(store: GexStore, opts: GexJobsOptions) {
    this.#store = store;
    this.#o = { maxQueued: 100, concurrency: 1, maxDecompressedBytes: 512 * 1024 * 1024, ...opts };
  }

  /** Queue a download; returns the job (an existing one for a duplicate URL), or null when the queue is full. */
  submit(url: URL, ticker: string | null, category: string | null): { job: GexJob; duplicate: boolean } | null {
    const base = `${url.origin}${url.pathname}`;
    const key = `${base}\u0000${ticker ?? ''}`;
    const existingId = this.#byKey.get(key);
    if (existingId !== undefined) {
      const j = this.#jobs.get(existingId)!;
      if (j.state !== 'failed') return { job: j, duplicate: true };
    }
    if (this.#queue.length >= this.#o.maxQueued || this.#closed) return null;
    const job: GexJob = {
      id: `gex-${Date.now().toString(36)}-${this.#next++}`, url: base, ticker, category, state: 'queued', error: null, bytes: 0, gzip: null,
      snapshots: 0, added: 0, duplicates: 0, rejected: 0, rawPath: null, createdAt: new Date().toISOString(), finishedAt: null,
    };
    this.#jobs.set(job.id, job);
    this.#byKey.set(key, job.id);
    this.#queue.push({ job, url: url.href });
    this.#pump();
    return { job, duplicate: false };
  }

  get(id: string): GexJob | null {
    return this.#jobs.get(id) ?? null;
  }

  stats(): { queued: number; running: number; done: number; failed: number } {
    let done = 0, failed = 0;
    for (const j of this.#jobs.values()) { if (j.state === 'done') done++; else if (j.state === 'failed') failed++; }
    return { queued: this.#queue.length, running: this.#running, done, failed };
  }

  /** Resolves when nothing is queued or running (tests, shutdown). */
  idle(): Promise<void> {
    if (this.#queue.length === 0 && this.#running === 0) return Promise.resolve();
    return new Promise((r) => this.#idleWaiters.push(r));
  }

  /** Abort running downloads, drop queued ones. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#abort.abort();
    for (const { job } of this.#queue.splice(0)) this.#fail(job, 'CANCELLED', 'the server is shutting down');
    await this.idle();
  }

  #pump(): void {
    while (this.#running < this.#o.concurrency && this.#queue.length > 0) {
      const { job, url } = this.#queue.shift()!;
      this.#running++;
      this.#run(job, url).catch((e: unknown) => this.#fail(job, 'INTERNAL', e instanceof Error ? e.message : String(e))).finally(() => {
        this.#running--;
        this.#pump();
        if (this.#queue.length === 0 && this.#running === 0) for (const w of this.#idleWaiters.splice(0)) w();
      });
    }
  }

  #fail(job: GexJob, code: string, message: string): void {
    job.state = 'failed';
    job.error = { code, message };
    job.finishedAt = new Date().toISOString();
  }

  /** Decompress (async, bounded) and parse: small files inline, large ones in a worker thread. */
  async #parse(bytes: Buffer, job: GexJob): Promise<GexParseResult> {
    const gz = bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
    let data = bytes;
    if (gz) {
      try {
        data = await gunzipAsync(bytes, { maxOutputLength: this.#o.maxDecompressedBytes });
      } catch (e) {
        const big = (e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
        return { code: 'ERROR', refusal: big ? 'TOO_LARGE' : 'BAD_FILE', message: big ? `decompressed size above ${this.#o.maxDecompressedBytes} bytes` : `bad gzip data: ${(e as Error).message}` };
      }
    }
    if (data.length > INLINE_PARSE_BYTES) {
      const r = await parseInWorker({ bytes: data, ticker: job.ticker, category: job.category, maxDecompressedBytes: this.#o.maxDecompressedBytes });
      return r.code === 'DONE' ? { ...r, gzip: gz } : r;
    }
    try {
      const p = parseGexFile(data.toString('utf8'), { ticker: job.ticker, category: job.category });
      return { code: 'DONE', gzip: gz, snapshots: p.snapshots, rejected: p.rejected, firstError: p.firstError };
    } catch (e) {
      return { code: 'ERROR', refusal: 'BAD_FILE', message: e instanceof Error ? e.message : String(e) };
    }
  }

  async #run(job: GexJob, url: string): Promise<void> {
    job.state = 'downloading';
    let bytes: Buffer;
    try {
      bytes = (await safeDownload(url, this.#o.policy, this.#abort.signal)).bytes;
    } catch (e) {
      if (e instanceof FetchRefused) { this.#fail(job, e.code, e.message); return; }
      throw e;
    }
    job.bytes = bytes.length;
    // keep the raw file as received
    const day = new Date().toISOString().slice(0, 10);
    const name = basename(new URL(url).pathname).replace(/[^A-Za-z0-9._-]/g, '_') || 'gex.json';
    const rawPath = join(this.#o.rawDir, day, `${job.id}_${name}`);
    await mkdir(join(this.#o.rawDir, day), { recursive: true });
    await writeFile(rawPath, bytes);
    job.rawPath = rawPath;
    job.state = 'parsing';
    const r = await this.#parse(bytes, job);
    if (r.code === 'ERROR') { this.#fail(job, r.refusal, r.message); return; }
    job.gzip = r.gzip;
    job.snapshots = r.snapshots.length;
    job.rejected = r.rejected;
    if (job.ticker === null) job.ticker = r.snapshots[0]?.ticker ?? null;
    const added = await this.#store.add(r.snapshots);
    job.added = added.added;
    job.duplicates = added.duplicates;
    job.state = 'done';
    job.finishedAt = new Date().toISOString();
    if (added.newLatest.length > 0 && this.#o.onLatest) {
      try { this.#o.onLatest(added.newLatest); } catch { /* a listener's failure is not the job's */ }
    }
  }
}

/** Files up to this size (decompressed) are parsed on the calling thread (a few ms); larger ones in a worker. */
const INLINE_PARSE_BYTES = 1024 * 1024;

function parseInWorker(req: GexParseRequest): Promise<GexParseResult> {
  return new Promise((resolve, reject) => {
    const w = spawnWorker(PARSE_WORKER, req, { name: 'gex-parse' });
    let done = false;
    w.once('message', (m: GexParseResult) => { done = true; resolve(m); });
    w.once('error', (e) => { if (!done) { done = true; reject(e); } });
    w.once('exit', (code) => { if (!done) { done = true; reject(new Error(`GEX parse worker exited with code ${code}`)); } });
  });
}
