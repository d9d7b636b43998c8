/**
 * Journal ticks for history queries, read off the calling thread: a small piscina pool (one thread by
 * default, started on first use, exiting after `idleTimeoutMs` idle; idle threads do not keep the process
 * alive) runs journal-ticks.ts and transfers the columns back. The uWS thread only lists directories
 * (async) and awaits.
 *
 * `sharedJournalReader()` is the one pool the REST historical route and the WebSocket replay share.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Piscina } from 'piscina';
import { engineError, fromWire } from '../errors.ts';
import { HOUR_MICROS, JOURNAL_FILE_SUFFIX, parseDayDir, parseHourFile } from '../journal/format.ts';
import type { JournalHourRef, JournalTicksResult, JournalTicksTask } from './journal-ticks.ts';
import type { HistoryPoolResult } from './pool-task.ts';

const BOOT = new URL('./pool-boot.mjs', import.meta.url);
const US_PER_DAY = 86_400_000_000;

export interface JournalReaderOptions {
  /** Pool threads (default 1). */
  threads?: number;
  /** Idle threads exit after this many ms (default 60 s). */
  idleTimeoutMs?: number;
}

export class JournalReader {
  readonly #opts: JournalReaderOptions;
  #pool: Piscina | null = null;
  #closed = false;
  /** Tasks run (for tests and status). */
  tasks = 0;

  constructor(opts: JournalReaderOptions = {}) {
    const threads = opts.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1 || threads > 16) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `history reader threads must be an integer 1..16, got ${String(threads)}`, { threads: Number(threads) });
    }
    this.#opts = opts;
  }

  /** Read ticks of one symbol from journal hour files (see journal-ticks.ts); rejects with a coded error. */
  async read(task: Omit<JournalTicksTask, 'kind'>): Promise<JournalTicksResult> {
    if (this.#closed) throw engineError('ENGINE_ERR_WORKER', 'history reader is closed', {});
    this.#pool ??= new Piscina({
      filename: BOOT.href, minThreads: 0, maxThreads: this.#opts.threads ?? 1, idleTimeout: this.#opts.idleTimeoutMs ?? 60_000, atomics: 'disabled',
    });
    this.tasks++;
    let out: HistoryPoolResult;
    try {
      out = (await this.#pool.run({ kind: 'journal-ticks', ...task } satisfies JournalTicksTask)) as HistoryPoolResult;
    } catch (err) {
      throw engineError('ENGINE_ERR_WORKER', `history reader task failed: ${err instanceof Error ? err.message : String(err)}`, {}, err);
    }
    if (out.kind === 'error') throw fromWire(out.error);
    return out;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#pool !== null) await this.#pool.close();
  }
}

let shared: JournalReader | null = null;

/** The process-wide reader shared by REST and WebSocket history (created on first use). */
export function sharedJournalReader(): JournalReader {
  shared ??= new JournalReader();
  return shared;
}

/**
 * Journal hours overlapping [fromMicros, toMicros) whose journal is still the truth: `<HH>.tpj` present and
 * no `<HH>.compacted` marker beside it (a marker means the hour's Parquet was verified: a marker next to a
 * `.tpj` is a delete in progress). Oldest first. Async directory reads only.
 */
export async function listJournalHours(journalDir: string, fromMicros: number, toMicros: number): Promise<JournalHourRef[]> {
  const out: JournalHourRef[] = [];
  if (!(toMicros > fromMicros)) return out;
  let days: string[];
  try {
    days = await readdir(journalDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw engineError('ENGINE_ERR_FILE_IO', `cannot list journal ${journalDir}: ${(err as Error).message}`, { file: journalDir, errno: (err as NodeJS.ErrnoException).code ?? null }, err);
  }
  const firstDay = Math.floor(fromMicros / US_PER_DAY) * US_PER_DAY;
  for (const day of days.sort()) {
    const d0 = parseDayDir(day);
    if (d0 === null || d0 < firstDay || d0 >= toMicros) continue;
    let names: string[];
    try {
      names = await readdir(join(journalDir, day));
    } catch {
      continue; // removed meanwhile (retention), or not a directory
    }
    const tpj = new Set<number>();
    const marked = new Set<number>();
    for (const n of names) {
      const p = parseHourFile(n);
      if (p === null) continue;
      (p.kind === 'tpj' ? tpj : marked).add(p.hour);
    }
    for (const hh of [...tpj].sort((a, b) => a - b)) {
      if (marked.has(hh)) continue;
      const h = d0 + hh * HOUR_MICROS;
      if (h + HOUR_MICROS <= fromMicros || h >= toMicros) continue;
      out.push({ hourStartMicros: h, path: join(journalDir, day, `${String(hh).padStart(2, '0')}${JOURNAL_FILE_SUFFIX}`) });
    }
  }
  return out;
}
