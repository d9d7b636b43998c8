// Public surface of the latest table. Slot offsets (`F_*`, `*_BYTE`) are in './layout.ts'.
export { FIELD_COUNT, Side, MAX_CAPACITY as LATEST_MAX_CAPACITY } from './layout.ts';
export * from './latest-table.ts';
