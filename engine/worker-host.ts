import { Worker, type WorkerOptions } from 'node:worker_threads';

const BOOT_URL = new URL('./worker-boot.mjs', import.meta.url);

export interface SpawnOptions extends Omit<WorkerOptions, 'workerData' | 'eval'> {
  /** Thread name shown in diagnostics. */
  name?: string;
}

/**
 * Start a worker thread on a TypeScript (or JavaScript) entry module.
 *
 * `entry` is a URL, usually `new URL('./x.worker.ts', import.meta.url)`. `data` is passed as
 * `workerData` (with one extra private field naming the entry), so it may hold SharedArrayBuffers,
 * MessagePorts (list them in `transferList`) and plain values.
 */
export function spawnWorker<T extends object>(entry: URL, data: T, options: SpawnOptions = {}): Worker {
  return new Worker(BOOT_URL, {
    ...options,
    workerData: { ...data, __tickpipeEntry: entry.href },
  });
}

/** Wait for a worker to post a message matching `pred`, failing on 'error' or an early 'exit'. */
export function waitForMessage<M>(w: Worker, pred: (m: unknown) => m is M, timeoutMs = 30_000): Promise<M> {
  return new Promise<M>((resolve, reject) => {
    const timer = setTimeout(() => { cleanup(); reject(new Error(`worker message timeout after ${timeoutMs} ms`)); }, timeoutMs);
    const onMsg = (m: unknown): void => { if (pred(m)) { cleanup(); resolve(m); } };
    const onErr = (e: Error): void => { cleanup(); reject(e); };
    const onExit = (code: number): void => { cleanup(); reject(new Error(`worker exited with code ${code} before the expected message`)); };
    function cleanup(): void {
      clearTimeout(timer);
      w.off('message', onMsg); w.off('error', onErr); w.off('exit', onExit);
    }
    w.on('message', onMsg); w.on('error', onErr); w.on('exit', onExit);
  });
}
