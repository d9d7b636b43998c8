/**
 * The compactor pool's threads are background work: named `tp:compactor` and run at the nice value given
 * (engine/thread-priority.ts), so on a small machine they yield the cores to ingest, validation and the
 * WebSocket fan-out; the DuckDB threads they start inherit it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { threadsNamed } from '../../engine/fixtures/threads.ts';
import { CompactorPool } from './pool.ts';

describe.runIf(process.platform === 'linux')('compactor pool threads', () => {
  test('run at the configured nice value, named tp:compactor', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tickpipe-pool-'));
    const pool = new CompactorPool({ threads: 1, nice: 6 });
    try {
      const r = await pool.run({ kind: 'purge', dataDir: dir, cutoffDate: '2020-01-01' });
      expect(r.kind).toBe('purged');
      expect(threadsNamed('tp:compactor')).toEqual([expect.objectContaining({ nice: 6 })]);
    } finally {
      await pool.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('nice 0 (the default) leaves the priority alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tickpipe-pool-'));
    const pool = new CompactorPool({ threads: 1 });
    try {
      await pool.run({ kind: 'purge', dataDir: dir, cutoffDate: '2020-01-01' });
      expect(threadsNamed('tp:compactor')).toEqual([expect.objectContaining({ nice: 0 })]);
    } finally {
      await pool.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
