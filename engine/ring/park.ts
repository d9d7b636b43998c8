/**
 * Parking: spin briefly, then sleep on the sleeper's own "parked" flag word until a waker clears it.
 *
 * Protocol (one sleeper per flag word: the consumer parks on CONSUMER_PARKED, the producer on
 * PRODUCER_PARKED):
 *
 *   sleeper                                   waker (other side's publish/release, or the supervisor)
 *   1. spin on the sequence word              a. store the sequence word / the ring state
 *   2. store flag = 1                         b. if flag is 1, compareExchange(flag, 1 -> 0)
 *   3. re-check sequence and ring state       c. if the exchange won: notify(flag)
 *   4. Atomics.wait(flag, expected 1)
 *   5. store flag = 0
 *
 * Why the flag word and not the sequence word: the consumer must wake both on a publish (the producer
 * changes WRITE_SEQ) and on a supervisor state change (which cannot touch WRITE_SEQ: it is the
 * producer's). Waiting on WRITE_SEQ with its last value closed the publish race, but a state change
 * landing between the sleeper's state check and its `Atomics.wait` was lost: the notify found nobody
 * waiting and the sleeper then slept for the whole timeout (measured: 31 of 3,000 DRAINING signals
 * lost with a 300 ms park). Sleeping on the flag closes both windows: JS Atomics are sequentially
 * consistent, so either the sleeper's step 3 sees the waker's step a, or the waker's step b sees the
 * sleeper's step 2 and clears the flag, in which case the sleeper's `Atomics.wait` either finds the
 * value already 0 ('not-equal', returns at once) or is asleep and gets the notify. A waker whose
 * exchange loses (flag already 0) has nobody to wake, so the common publish path costs one load.
 *
 * A late notify from an earlier round can wake a later park early; callers always loop and re-check,
 * so a spurious 'changed' is harmless.
 *
 * Always with a timeout: a stop must be noticed even if a waker dies between its steps.
 *
 * `parkSync` blocks the thread (Atomics.wait): only for workers with no pending async I/O. Never on
 * the thread that owns the uWS App. `parkAsync` uses Atomics.waitAsync and keeps the event loop free.
 */
import { STATE_I32 } from './layout.ts';

/**
 * Loads of the watched word before sleeping: about 2-4 µs, longer than a producer needs to fill a
 * 64-record batch, so a busy pipeline rarely pays a futex sleep/wake. Measured (bench ring, 64-byte
 * slots, two threads, same machine back to back): batch 64 21.1 -> 30.6 M records/s, batch 1024
 * 27.1 -> 43.0 M records/s going from 64 to 2048. An idle consumer spends those few µs once per park.
 */
export const SPIN_LIMIT = 2048;

export type ParkResult = 'changed' | 'timed-out';

/**
 * Block until the word `seqI32` differs from `lastSeen`, the ring state differs from `stateSeen`, a
 * waker clears `flagI32`, or `timeoutMs` passes. Counts one park in `countI32` when it sleeps.
 */
export function parkSync(ctrl: Int32Array, seqI32: number, lastSeen: number, stateSeen: number, flagI32: number, countI32: number, timeoutMs: number): ParkResult {
  for (let i = 0; i < SPIN_LIMIT; i++) if (Atomics.load(ctrl, seqI32) !== lastSeen) return 'changed';
  Atomics.store(ctrl, flagI32, 1);
  if (Atomics.load(ctrl, seqI32) !== lastSeen || Atomics.load(ctrl, STATE_I32) !== stateSeen) {
    Atomics.store(ctrl, flagI32, 0);
    return 'changed';
  }
  Atomics.add(ctrl, countI32, 1);
  const r = Atomics.wait(ctrl, flagI32, 1, timeoutMs);
  Atomics.store(ctrl, flagI32, 0);
  return r === 'timed-out' ? 'timed-out' : 'changed';
}

/** Like parkSync, with Atomics.waitAsync: the event loop keeps running while parked. */
export async function parkAsync(ctrl: Int32Array, seqI32: number, lastSeen: number, stateSeen: number, flagI32: number, countI32: number, timeoutMs: number): Promise<ParkResult> {
  for (let i = 0; i < SPIN_LIMIT; i++) if (Atomics.load(ctrl, seqI32) !== lastSeen) return 'changed';
  Atomics.store(ctrl, flagI32, 1);
  if (Atomics.load(ctrl, seqI32) !== lastSeen || Atomics.load(ctrl, STATE_I32) !== stateSeen) {
    Atomics.store(ctrl, flagI32, 0);
    return 'changed';
  }
  Atomics.add(ctrl, countI32, 1);
  const w = Atomics.waitAsync(ctrl, flagI32, 1, timeoutMs);
  const r = w.async ? await w.value : w.value;
  Atomics.store(ctrl, flagI32, 0);
  return r === 'timed-out' ? 'timed-out' : 'changed';
}

/**
 * Wake the party parked on `flagI32`, if any. Call after storing the sequence or state it waits for.
 * Costs one Atomics.load when nobody is parked.
 */
export function wakeParked(ctrl: Int32Array, flagI32: number): void {
  // why compareExchange: only the waker that flips 1 -> 0 pays for the notify; the flip itself is what a
  // sleeper that has not reached Atomics.wait yet observes (its wait then returns 'not-equal').
  if (Atomics.load(ctrl, flagI32) === 1 && Atomics.compareExchange(ctrl, flagI32, 1, 0) === 1) {
    Atomics.notify(ctrl, flagI32);
  }
}
