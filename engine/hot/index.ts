// Public surface of the hot window. Region offsets and control words are in './layout.ts'.
export {
  DEFAULT_CAPACITY as HOT_DEFAULT_CAPACITY, DEFAULT_MAX_BYTES as HOT_DEFAULT_MAX_BYTES,
  DEFAULT_RETAIN_MICROS as HOT_DEFAULT_RETAIN_MICROS, ENTRY_BYTES as HOT_ENTRY_BYTES, hotBytes,
} from './layout.ts';
export * from './hot-columns.ts';
export * from './hot-window.ts';
