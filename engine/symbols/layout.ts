/**
 * Symbol registry layout: constants and size math only.
 *
 * The registry is one SharedArrayBuffer: a 256-byte header (two 128-byte lines) and `capacity` fixed
 * 128-byte slots, one per symbol id (id k lives in slot k - 1; id 0 means "none" and has no slot).
 * `_I32` constants are Int32Array element indices into the header; `_BYTE` constants are byte offsets
 * inside a slot. Every word says who writes it.
 *
 * Slots are write-once: a registrant fills a slot while holding the lock and only then publishes it by
 * storing the new count (publish-after-write). Readers load the count with Atomics.load and read slots
 * below it without any lock; a published slot never changes again.
 */
export const LINE_BYTES = 128;
export const I32_PER_LINE = LINE_BYTES / 4; // 32

/** 'TPSY' little-endian. */
export const REGISTRY_MAGIC = 0x59535054;
export const REGISTRY_LAYOUT_VERSION = 1;

// line 0: immutable after create(); written once by SymbolRegistry.create() (magic last).
export const MAGIC_I32 = 0;
export const LAYOUT_VERSION_I32 = 1;
export const CAPACITY_I32 = 2; // number of slots = largest id
export const SLOT_BYTES_I32 = 3;

// line 1: registrants (any thread), only while holding the lock (except LOCK_I32 itself).
export const LOCK_I32 = 1 * I32_PER_LINE; // 0 = free, else the holder's threadId + 1 (compareExchange)
export const COUNT_I32 = LOCK_I32 + 1; // published symbols: ids 1..count are valid (Atomics.store after the slot is written)
export const LOCK_CONTENDED_I32 = LOCK_I32 + 2; // times a registrant found the lock taken (diagnostics)

export const HEADER_BYTES = 2 * LINE_BYTES; // 256: slots start here, 128-aligned
export const HEADER_I32 = HEADER_BYTES / 4;

// ---- slot (128 bytes, written once by the registrant that assigned the id) -------------------------
export const SLOT_BYTES = 128;
// strings are ASCII: a u8 length, then the bytes (the field width includes the length byte)
export const SYMBOL_LEN_BYTE = 0; // u8
export const SYMBOL_CHARS_BYTE = 1; // up to 31 ASCII bytes
export const SYMBOL_MAX_CHARS = 31;
export const ROOT_LEN_BYTE = 32; // u8
export const ROOT_CHARS_BYTE = 33; // up to 15
export const ROOT_MAX_CHARS = 15;
export const EXCHANGE_LEN_BYTE = 48; // u8
export const EXCHANGE_CHARS_BYTE = 49; // up to 15
export const EXCHANGE_MAX_CHARS = 15;
export const SESSION_LEN_BYTE = 64; // u8
export const SESSION_CHARS_BYTE = 65; // up to 23
export const SESSION_MAX_CHARS = 23;
export const TICK_SIZE_BYTE = 88; // f64 minimum price increment, in real price units
export const PRICE_MULTIPLIER_BYTE = 96; // f64 real price = raw feed price * multiplier (1, or 0.01 for ×100 feeds)
export const EXPIRY_MICROS_BYTE = 104; // f64 last trading instant, Unix µs (NaN when not a future)
export const ROLL_MICROS_BYTE = 112; // f64 instant the next contract becomes the front month (NaN when not a future)
export const KIND_BYTE = 120; // u8 SymbolKindCode
export const CONTRACT_MONTH_BYTE = 121; // u8 1..12 (0 when not a future)
export const CONTRACT_YEAR_BYTE = 122; // u16 e.g. 2025 (0 when not a future)
export const SLOT_ID_BYTE = 124; // u16 the slot's own id (self-check on decode)
// 126..128 reserved (zero)

export const MAX_CAPACITY = 65535; // ids are u16 and 0 is reserved
export const DEFAULT_CAPACITY = 4096;

/** Byte length of a registry buffer for `capacity` symbols. */
export const registryBytes = (capacity: number): number => HEADER_BYTES + capacity * SLOT_BYTES;
/** Byte offset of the slot of symbol `id` (1-based). */
export const slotByteOf = (id: number): number => HEADER_BYTES + (id - 1) * SLOT_BYTES;

export const SymbolKindCode = { future: 1, equity: 2, etf: 3, index: 4, option: 5 } as const;
export type SymbolKind = keyof typeof SymbolKindCode;
export const SYMBOL_KINDS: readonly SymbolKind[] = ['future', 'equity', 'etf', 'index', 'option'];
