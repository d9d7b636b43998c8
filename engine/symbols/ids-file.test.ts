/**
 * symbol-ids.json: a symbol keeps its id across restarts and configuration changes (reordered, dropped,
 * re-priced, new symbols), and a file that cannot be read back exactly stops the start with a coded error.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { isEngineError } from '../errors.ts';
import { readSymbolIds, registerWithRecordedIds, symbolIdsPath, writeSymbolIds } from './ids-file.ts';
import { SymbolRegistry } from './registry.ts';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'tickpipe-ids-'));
  dirs.push(d);
  return d;
}

/** One engine start: a fresh registry (as every process has), the recorded ids, then `configured`; recorded again. */
function start(dir: string, configured: { symbol: string; priceMultiplier?: number }[]): SymbolRegistry {
  const r = SymbolRegistry.create({ capacity: 64 });
  const { changed } = registerWithRecordedIds(r, dir, configured);
  if (changed) writeSymbolIds(dir, r);
  return r;
}
const ids = (r: SymbolRegistry): Record<string, number> => Object.fromEntries(Array.from({ length: r.size }, (_, i) => [r.metaOf(i + 1).symbol, i + 1]));

describe('symbol-ids.json', () => {
  test('ids survive reordering, dropping and re-pricing symbols; new symbols get the next ids', () => {
    const dir = tmp();
    expect(readSymbolIds(dir)).toEqual([]);
    expect(ids(start(dir, [{ symbol: 'NQZ26' }, { symbol: 'MNQZ26' }, { symbol: 'MESZ26' }]))).toEqual({ NQZ26: 1, MNQZ26: 2, MESZ26: 3 });
    // reordered, one dropped, one new (the demo's roll: NQH27 arrives, NQZ26 is no longer configured)
    const r2 = start(dir, [{ symbol: 'MESZ26' }, { symbol: 'NQH27' }, { symbol: 'MNQZ26' }]);
    expect(ids(r2)).toEqual({ NQZ26: 1, MNQZ26: 2, MESZ26: 3, NQH27: 4 });
    expect(r2.metaOf(1).symbol).toBe('NQZ26'); // old journal records of id 1 still read as NQZ26
    // a changed price multiplier for a configured symbol is taken (and recorded), its id kept
    const r3 = start(dir, [{ symbol: 'NQH27', priceMultiplier: 0.01 }]);
    expect(ids(r3)).toEqual({ NQZ26: 1, MNQZ26: 2, MESZ26: 3, NQH27: 4 });
    expect(r3.metaOf(4).priceMultiplier).toBe(0.01);
    expect(readSymbolIds(dir).find((x) => x.symbol === 'NQH27')?.priceMultiplier).toBe(0.01);
    // nothing new: the file is not rewritten
    const before = readFileSync(symbolIdsPath(dir), 'utf8');
    expect(registerWithRecordedIds(SymbolRegistry.create({ capacity: 64 }), dir, [{ symbol: 'NQH27', priceMultiplier: 0.01 }]).changed).toBe(false);
    expect(readFileSync(symbolIdsPath(dir), 'utf8')).toBe(before);
  });

  test('symbols not configured any more keep their recorded metadata', () => {
    const dir = tmp();
    start(dir, [{ symbol: 'ESZ25', priceMultiplier: 0.01 }, { symbol: 'SPY' }]);
    const r = start(dir, [{ symbol: 'SPY' }]);
    expect(r.metaOf(1)).toMatchObject({ symbol: 'ESZ25', priceMultiplier: 0.01, root: 'ES' });
    expect(r.metaOf(2).symbol).toBe('SPY');
  });

  test.each([
    ['not JSON', '{"version":1,'],
    ['wrong shape', '{"symbols":{}}'],
    ['ids not 1..n', JSON.stringify({ version: 1, symbols: [{ id: 2, symbol: 'NQZ26', root: 'NQ', exchange: 'CME', kind: 'future', tickSize: 0.25, priceMultiplier: 1, sessionCalendar: 'cme-globex' }] })],
    ['repeated symbol', JSON.stringify({ version: 1, symbols: [1, 2].map((id) => ({ id, symbol: 'NQZ26', root: 'NQ', exchange: 'CME', kind: 'future', tickSize: 0.25, priceMultiplier: 1, sessionCalendar: 'cme-globex' })) })],
    ['bad tick size', JSON.stringify({ version: 1, symbols: [{ id: 1, symbol: 'NQZ26', root: 'NQ', exchange: 'CME', kind: 'future', tickSize: -1, priceMultiplier: 1, sessionCalendar: 'cme-globex' }] })],
    ['a symbol the registry refuses', JSON.stringify({ version: 1, symbols: [{ id: 1, symbol: 'no spaces allowed', root: 'X', exchange: 'CME', kind: 'future', tickSize: 0.25, priceMultiplier: 1, sessionCalendar: 'cme-globex' }] })],
  ])('a corrupt file (%s) is ENGINE_ERR_CONFIG naming it, and nothing is guessed', (_why, text) => {
    const dir = tmp();
    writeFileSync(symbolIdsPath(dir), text);
    let err: unknown = null;
    try {
      registerWithRecordedIds(SymbolRegistry.create({ capacity: 64 }), dir, [{ symbol: 'NQZ26' }]);
    } catch (e) {
      err = e;
    }
    expect(isEngineError(err)).toBe(true);
    expect((err as Error & { code: string }).code).toBe('ENGINE_ERR_CONFIG');
    expect((err as Error).message).toContain(symbolIdsPath(dir));
  });
});
