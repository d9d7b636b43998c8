/**
 * An unusable data directory is a clear coded error at start, naming the path, not a silent stall: the
 * validator cannot open its journal (here `<data-dir>/journal` is a file), and Engine.start rejects with
 * the validator's own ENGINE_ERR_FILE_IO, after stopping what it had started.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { loadConfig } from '../engine/config.ts';
import { Engine } from '../engine/engine.ts';
import { isEngineError } from '../engine/errors.ts';

test('a data directory whose journal cannot be created fails the start with a coded error naming it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tickpipe-baddata-'));
  try {
    const data = join(dir, 'data');
    const src = join(dir, 'sierra');
    mkdirSync(data);
    mkdirSync(src);
    writeFileSync(join(data, 'journal'), 'a file where the journal folder should be');
    let err: unknown;
    const t0 = Date.now();
    try {
      const e = await Engine.start(loadConfig({
        TICKPIPE_DATA_DIR: data, TICKPIPE_PORT: '0', TICKPIPE_DEMO: '0', TICKPIPE_SIERRA_DIR: src, TICKPIPE_SYMBOLS: 'MNQZ25', TICKPIPE_HOT_CAPACITY: '1024',
      }), { info: () => undefined, warn: () => undefined });
      await e.close();
    } catch (e) { err = e; }
    expect(isEngineError(err, 'ENGINE_ERR_FILE_IO')).toBe(true);
    expect((err as Error).message).toContain(join(data, 'journal'));
    expect(Date.now() - t0).toBeLessThan(60_000); // not the 120 s ready timeout
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 90_000);
