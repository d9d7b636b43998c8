/**
 * On-disk store of GEX snapshots, queryable by ticker and time.
 *
 * Layout: `<dir>/ticker=<TICKER>/date=<YYYY-MM-DD>.jsonl`, one normalized snapshot (snapshot.ts) per line,
 * in time order within a file, keyed by (ticker, tsMicros): a snapshot already stored is a duplicate and
 * is not written again (GEXBot re-serves the same timestamp; the same history file may be posted twice).
 * Readable with any JSON-lines reader (`duckdb -c "select * from read_json('data/gex/ticker=NQ_NDX/*.jsonl')"`).
 *
 * Every method is async and never blocks the caller's thread on I/O. Writes are serialized per store.
 * `latest(ticker)` is answered from memory (loaded at open from the newest file of each ticker).
 */
import { appendFile, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { engineError } from '../errors.ts';
import type { GexSnapshot } from './snapshot.ts';

const DAY_MICROS = 86_400_000_000;

function dayOf(tsMicros: number): string {
  return new Date(Math.floor(tsMicros / 1000)).toISOString().slice(0, 10);
}

export interface GexAddResult {
  added: number;
  duplicates: number;
  /** Newest snapshot added that is newer than the previous latest of its ticker (for live fan-out), per ticker. */
  newLatest: GexSnapshot[];
}

export class GexStore {
  readonly dir: string;
  readonly #latest = new Map<string, GexSnapshot>();
  /** (ticker/date) -> stored tsMicros of that day file, loaded on first write to it */
  readonly #seen = new Map<string, Set<number>>();
  #chain: Promise<unknown> = Promise.resolve();

  private constructor(dir: string) {
    this.dir = dir;
  }

  static async open(dir: string): Promise<GexStore> {
    const s = new GexStore(dir);
    try {
      await mkdir(dir, { recursive: true });
      for (const t of await s.#tickerDirs()) {
        const days = await s.#days(t);
        const newest = days.at(-1);
        if (newest === undefined) continue;
        const rows = await s.#readDay(t, newest);
        const last = rows.at(-1);
        if (last) s.#latest.set(t, last);
      }
    } catch (e) {
      throw engineError('ENGINE_ERR_FILE_IO', `cannot open the GEX store at ${dir}: ${(e as Error).message}`, { file: dir }, e);
    }
    return s;
  }

  tickers(): string[] {
    return [...this.#latest.keys()].sort();
  }

  latest(ticker: string): GexSnapshot | null {
    return this.#latest.get(ticker) ?? null;
  }

  /** Store snapshots (any order, any tickers); duplicates by (ticker, tsMicros) are skipped. */
  add(snaps: readonly GexSnapshot[]): Promise<GexAddResult> {
    const run = this.#chain.then(() => this.#add(snaps));
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #add(snaps: readonly GexSnapshot[]): Promise<GexAddResult> {
    const groups = new Map<string, GexSnapshot[]>();
    for (const g of [...snaps].sort((a, b) => a.tsMicros - b.tsMicros)) {
      const k = `${g.ticker}\u0000${dayOf(g.tsMicros)}`;
      let l = groups.get(k);
      if (!l) { l = []; groups.set(k, l); }
      l.push(g);
    }
    let added = 0, duplicates = 0;
    const newest = new Map<string, GexSnapshot>();
    for (const [k, list] of groups) {
      const [ticker, day] = k.split('\u0000') as [string, string];
      let seen = this.#seen.get(k);
      if (!seen) {
        seen = new Set((await this.#readDay(ticker, day)).map((r) => r.tsMicros));
        this.#seen.set(k, seen);
      }
      const lines: string[] = [];
      for (const g of list) {
        if (seen.has(g.tsMicros)) { duplicates++; continue; }
        seen.add(g.tsMicros);
        lines.push(JSON.stringify(g));
        added++;
        const prev = newest.get(ticker) ?? this.#latest.get(ticker);
        if (!prev || g.tsMicros > prev.tsMicros) newest.set(ticker, g);
      }
      if (lines.length === 0) continue;
      const dir = join(this.dir, `ticker=${ticker}`);
      try {
        await mkdir(dir, { recursive: true });
        await appendFile(join(dir, `date=${day}.jsonl`), lines.join('\n') + '\n');
      } catch (e) {
        throw engineError('ENGINE_ERR_FILE_IO', `cannot write GEX snapshots of ${ticker} ${day}: ${(e as Error).message}`, { file: dir }, e);
      }
    }
    for (const [t, g] of newest) this.#latest.set(t, g);
    return { added, duplicates, newLatest: [...newest.values()] };
  }

  /**
   * Snapshots of `ticker` with fromMicros ≤ ts < toMicros, oldest first, at most `limit` (the first ones).
   * Day files are read in order (a day file is written in time order per add; rows are sorted anyway).
   */
  async history(ticker: string, fromMicros: number, toMicros: number, limit: number): Promise<{ rows: GexSnapshot[]; more: boolean }> {
    await this.#chain;
    const days = await this.#days(ticker);
    const firstDay = Number.isFinite(fromMicros) ? dayOf(Math.max(fromMicros, -8.64e15 * 1000 + DAY_MICROS)) : '';
    const lastDay = Number.isFinite(toMicros) ? dayOf(toMicros) : '\uffff';
    const rows: GexSnapshot[] = [];
    for (const d of days) {
      if (d < firstDay || d > lastDay) continue;
      const dayRows = (await this.#readDay(ticker, d)).filter((r) => r.tsMicros >= fromMicros && r.tsMicros < toMicros).sort((a, b) => a.tsMicros - b.tsMicros);
      for (const r of dayRows) {
        if (rows.length === limit) return { rows, more: true };
        rows.push(r);
      }
    }
    return { rows, more: false };
  }

  async #tickerDirs(): Promise<string[]> {
    const out: string[] = [];
    for (const e of await readdir(this.dir, { withFileTypes: true })) {
      if (e.isDirectory() && e.name.startsWith('ticker=')) out.push(e.name.slice('ticker='.length));
    }
    return out;
  }

  async #days(ticker: string): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(join(this.dir, `ticker=${ticker}`));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    return names.filter((n) => /^date=\d{4}-\d{2}-\d{2}\.jsonl$/.test(n)).map((n) => n.slice(5, 15)).sort();
  }

  async #readDay(ticker: string, day: string): Promise<GexSnapshot[]> {
    const file = join(this.dir, `ticker=${ticker}`, `date=${day}.jsonl`);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const out: GexSnapshot[] = [];
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        out.push(JSON.parse(line) as GexSnapshot);
      } catch {
        // a torn last line (crash mid-append) is skipped; the snapshot can be ingested again
      }
    }
    return out;
  }
}
