/**
 * The compactor's piscina pool, seen from the main thread: `CompactorPool.run(task)` resolves with the
 * task's result or rejects with the task's coded error (rebuilt with `fromWire`, so `code` and `detail`
 * survive the thread hop). Workers start through pool-boot.mjs (tsx loader, like engine/worker-boot.mjs).
 *
 * Atomics are disabled: piscina's `Atomics.wait` idle loop can stall a task's async DuckDB work between
 * tasks (STYLE.md §4); our tasks are long (seconds), so the message-port wake-up costs nothing.
 */
import { Piscina } from 'piscina';
import { engineError, fromWire } from '../../engine/errors.ts';
import type { PoolResult, PoolTask } from './tasks.ts';

const BOOT = new URL('./pool-boot.mjs', import.meta.url);

export interface CompactorPoolOptions {
  /** Pool threads (default 1). */
  threads?: number;
  /** Idle threads exit after this many ms (default 60 s; the pool starts them again on demand). */
  idleTimeoutMs?: number;
  /**
   * Nice value of the pool threads and of the DuckDB threads they start (0 = normal priority, up to 19;
   * default 0): compaction is background work (engine/thread-priority.ts).
   */
  nice?: number;
}

export class CompactorPool {
  readonly #pool: Piscina;
  #closed = false;

  constructor(opts: CompactorPoolOptions = {}) {
    const threads = opts.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `compactor pool threads must be an integer 1..64, got ${String(threads)}`, { threads: Number(threads) });
    }
    this.#pool = new Piscina({
      filename: BOOT.href,
      minThreads: 0,
      maxThreads: threads,
      idleTimeout: opts.idleTimeoutMs ?? 60_000,
      atomics: 'disabled',
      env: { ...process.env, TICKPIPE_THREAD_NICE: String(opts.nice ?? 0) },
    });
  }

  get threads(): number {
    return this.#pool.threads.length;
  }

  /** Run one task; rejects with its coded error. */
  async run<R extends PoolResult = PoolResult>(task: PoolTask, transferList?: readonly unknown[]): Promise<Exclude<R, { kind: 'error' }>> {
    if (this.#closed) throw engineError('ENGINE_ERR_WORKER', 'compactor pool is closed', {});
    let out: PoolResult;
    try {
      out = (await this.#pool.run(task, transferList === undefined ? {} : { transferList: transferList as never })) as PoolResult;
    } catch (err) {
      throw engineError('ENGINE_ERR_WORKER', `compactor pool task ${task.kind} failed: ${err instanceof Error ? err.message : String(err)}`, { task: task.kind }, err);
    }
    if (out.kind === 'error') throw fromWire(out.error);
    return out as Exclude<R, { kind: 'error' }>;
  }

  /** Wait for running tasks, then stop the threads. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.close();
  }

  /** Stop the threads now (running tasks are abandoned). */
  async destroy(): Promise<void> {
    this.#closed = true;
    await this.#pool.destroy();
  }
}
