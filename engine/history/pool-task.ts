/**
 * Task handler of the history reader pool (pool-boot.mjs → default export): reads journal ticks
 * (journal-ticks.ts) and moves the column buffers back to the caller (transferred, not copied). A failure
 * is returned as `{ kind: 'error', error }` (piscina would clone a thrown error without code and detail).
 */
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { toWire, type WireError } from '../errors.ts';
import { readJournalTicks, type JournalTicksResult, type JournalTicksTask } from './journal-ticks.ts';

export type HistoryPoolResult = JournalTicksResult | { kind: 'error'; error: WireError };

export default function handle(task: JournalTicksTask): HistoryPoolResult | ReturnType<typeof move> {
  try {
    const r = readJournalTicks(task);
    const buffers = [r.tsMicros.buffer, r.price.buffer, r.bid.buffer, r.ask.buffer, r.size.buffer, r.flags.buffer, r.seq.buffer, r.sourceId.buffer];
    return move({ [transferableSymbol]: buffers, [valueSymbol]: r } as never);
  } catch (err) {
    return { kind: 'error', error: toWire(err) };
  }
}
