import { describe, expect, test } from 'vitest';
import { kernelThreadId } from './thread-priority.ts';
import { spawnWorker } from './worker-host.ts';
import { threadInfo } from './fixtures/threads.ts';

const linux = process.platform === 'linux';

describe.runIf(linux)('thread priority (Linux)', () => {
  test('a worker lowers and names its own thread only; the main thread keeps its priority; no raise above normal', async () => {
    const mainTid = kernelThreadId();
    expect(mainTid).toBe(process.pid); // the main thread's id is the process id
    const before = threadInfo(mainTid!).nice;
    const w = spawnWorker(new URL('./fixtures/thread-priority.worker.ts', import.meta.url), {});
    try {
      const r = await new Promise<{ tid: number; named: boolean; set: number | null; raised: number | null; again: number | null }>((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
      expect(r.tid).not.toBe(mainTid);
      expect(r).toMatchObject({ named: true, set: 7, again: 7 });
      expect(r.raised === 0 || r.raised === null).toBe(true); // lowering the nice value back may be refused without privilege
      expect(threadInfo(r.tid)).toEqual({ nice: 7, name: 'tp:test-worker' });
      expect(threadInfo(mainTid!).nice).toBe(before);
    } finally {
      await w.terminate();
    }
  });
});
