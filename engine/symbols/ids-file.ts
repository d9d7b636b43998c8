/**
 * Symbol ids that survive restarts and configuration changes: `<data-dir>/symbol-ids.json`.
 *
 * Every stored record carries a symbol id, not a name (journal slots, quarantine and gap day stores, the Redis
 * sink's catch-up from the journal); the names come from the registry when the data is read or compacted.
 * The registry hands out ids in registration order, so without this file the ids followed the order of
 * TICKPIPE_SYMBOLS: reordering that list, dropping a symbol, or the demo's front months rolling (NQZ26 ->
 * NQH27 takes id 1) relabelled every uncompacted journal hour and every quarantine entry with another
 * contract's name. With it, a symbol keeps the id it first got for as long as the data directory lives:
 * at start the engine registers the recorded symbols in id order (those still configured with their
 * configured metadata, the others with the recorded one, so old data still has a name), then the newly
 * configured symbols, and records the result; symbols registered while running are recorded too.
 *
 * The file is written atomically (temporary file, fsync, rename). A file that cannot be read back exactly
 * (bad JSON, ids not 1..n, a symbol the registry refuses) is ENGINE_ERR_CONFIG naming the file: starting
 * anyway would attach stored data to the wrong contracts.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { engineError, isEngineError } from '../errors.ts';
import type { SymbolInput, SymbolMeta, SymbolRegistry } from './registry.ts';

export const SYMBOL_IDS_FILE = 'symbol-ids.json';

/** One recorded symbol: its id and the metadata it was registered with. */
export interface RecordedSymbol {
  id: number;
  symbol: string;
  root: string;
  exchange: string;
  kind: SymbolMeta['kind'];
  tickSize: number;
  priceMultiplier: number;
  sessionCalendar: string;
}

interface IdsFile { version: 1; symbols: RecordedSymbol[] }

export function symbolIdsPath(dataDir: string): string {
  return join(dataDir, SYMBOL_IDS_FILE);
}

function bad(path: string, why: string, cause?: unknown): never {
  throw engineError('ENGINE_ERR_CONFIG', `${path}: ${why}; it maps stored symbol ids to contracts, so the engine will not guess (fix or restore the file; delete it only together with the journal, quarantine and gap stores)`, { file: path }, cause);
}

/** The recorded symbols in id order (1..n), or [] when there is no file yet. */
export function readSymbolIds(dataDir: string): RecordedSymbol[] {
  const path = symbolIdsPath(dataDir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw engineError('ENGINE_ERR_FILE_IO', `cannot read ${path}: ${(err as Error).message}`, { file: path }, err);
  }
  let f: unknown;
  try {
    f = JSON.parse(text);
  } catch (err) {
    bad(path, `not valid JSON (${(err as Error).message})`, err);
  }
  const o = f as Partial<IdsFile> | null;
  if (typeof o !== 'object' || o === null || o.version !== 1 || !Array.isArray(o.symbols)) bad(path, 'expected {"version":1,"symbols":[...]}');
  const out: RecordedSymbol[] = [];
  const seen = new Set<string>();
  for (const [i, x] of o.symbols.entries()) {
    const s = x as Partial<RecordedSymbol> | null;
    if (typeof s !== 'object' || s === null || s.id !== i + 1) bad(path, `entry ${i + 1} must have id ${i + 1} (ids are 1..n in order)`);
    if (typeof s.symbol !== 'string' || s.symbol === '' || seen.has(s.symbol)) bad(path, `entry ${i + 1} has a missing or repeated symbol`);
    for (const k of ['root', 'exchange', 'kind', 'sessionCalendar'] as const) if (typeof s[k] !== 'string') bad(path, `entry ${i + 1} (${s.symbol}) has no ${k}`);
    for (const k of ['tickSize', 'priceMultiplier'] as const) if (typeof s[k] !== 'number' || !(s[k] > 0)) bad(path, `entry ${i + 1} (${s.symbol}) has no positive ${k}`);
    seen.add(s.symbol);
    out.push(s as RecordedSymbol);
  }
  return out;
}

/** Record every symbol of `registry` (ids 1..size, in order), atomically. */
export function writeSymbolIds(dataDir: string, registry: SymbolRegistry): void {
  const symbols: RecordedSymbol[] = [];
  for (let id = 1; id <= registry.size; id++) {
    const m = registry.metaOf(id);
    symbols.push({ id, symbol: m.symbol, root: m.root, exchange: m.exchange, kind: m.kind, tickSize: m.tickSize, priceMultiplier: m.priceMultiplier, sessionCalendar: m.sessionCalendar });
  }
  const path = symbolIdsPath(dataDir);
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    const fd = openSync(tmp, 'w', 0o644);
    try {
      writeSync(fd, `${JSON.stringify({ version: 1, symbols } satisfies IdsFile, null, 1)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    throw engineError('ENGINE_ERR_FILE_IO', `cannot write ${path}: ${(err as Error).message}`, { file: path }, err);
  }
}

/**
 * Register the recorded symbols under their recorded ids, then `configured` (those not recorded get the next
 * ids, in order). A configured symbol's own metadata (e.g. a changed price multiplier) wins over the recorded
 * one. Returns whether the registry now holds more or other symbols than the file (then write it).
 */
export function registerWithRecordedIds(registry: SymbolRegistry, dataDir: string, configured: readonly SymbolInput[]): { changed: boolean } {
  const recorded = readSymbolIds(dataDir);
  const path = symbolIdsPath(dataDir);
  const bySymbol = new Map(configured.map((c) => [c.symbol, c]));
  let changed = false;
  for (const r of recorded) {
    const mine = bySymbol.get(r.symbol);
    const input: SymbolInput = mine ?? { symbol: r.symbol, root: r.root, exchange: r.exchange, kind: r.kind, tickSize: r.tickSize, priceMultiplier: r.priceMultiplier, sessionCalendar: r.sessionCalendar };
    let id: number;
    try {
      id = registry.register(input);
    } catch (err) {
      if (isEngineError(err)) bad(path, `cannot register ${r.symbol} (id ${r.id}): ${err.message}`, err);
      throw err;
    }
    if (id !== r.id) bad(path, `${r.symbol} came back as id ${id}, recorded as ${r.id}`);
    if (mine !== undefined && registry.metaOf(id).priceMultiplier !== r.priceMultiplier) changed = true;
  }
  for (const c of configured) {
    if (registry.idOf(c.symbol) === 0) changed = true;
    registry.register(c);
  }
  return { changed };
}
