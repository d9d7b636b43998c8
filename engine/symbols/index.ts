// Public surface of the symbol registry. Layout constants stay in './layout.ts' (import it directly).
export { DEFAULT_CAPACITY, MAX_CAPACITY, SYMBOL_KINDS, type SymbolKind } from './layout.ts';
export * from './contracts.ts';
export * from './defaults.ts';
export * from './registry.ts';
