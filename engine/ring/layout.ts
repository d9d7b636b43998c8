/**
 * Ring control block layout: constants and size math only.
 *
 * One owner per 128-byte line (two 64-byte lines: defeats adjacent-line prefetch false sharing,
 * Agrona style). Every word says who writes it. Indices ending in `_I32` are Int32Array element
 * indices into the control block; `_BYTE` constants are byte offsets.
 */
export const LINE_BYTES = 128;
export const I32_PER_LINE = LINE_BYTES / 4; // 32

/** 'TPRG' little-endian. */
export const RING_MAGIC = 0x47525054;
export const RING_LAYOUT_VERSION = 1;

// line 0: immutable after create(); written once by the allocator (create()).
export const MAGIC_I32 = 0;
export const LAYOUT_VERSION_I32 = 1;
export const SLOT_BYTES_I32 = 2;
export const SLOT_COUNT_I32 = 3;
export const RECORD_KIND_I32 = 4; // free-form tag of what the slots carry (schemas/records.ts), 0 = any

// line 1: producer-owned.
export const WRITE_SEQ_I32 = 1 * I32_PER_LINE; // wrapping int32 sequence of the next slot to publish
export const PRODUCER_PARKED_I32 = WRITE_SEQ_I32 + 1; // producer: 1 while it waits for space; the consumer or supervisor clears it to wake it (park.ts)
export const PUBLISHED_LO_I32 = WRITE_SEQ_I32 + 2; // records published, low 32 bits
export const PUBLISHED_HI_I32 = WRITE_SEQ_I32 + 3; // 2 x high 32 bits, odd during a carry (ring.ts readCounter)
export const FULL_STALLS_I32 = WRITE_SEQ_I32 + 4; // claims that got fewer slots than wanted
export const PRODUCER_PARKS_I32 = WRITE_SEQ_I32 + 5; // times the producer parked on a full ring

// line 2: consumer-owned.
export const READ_SEQ_I32 = 2 * I32_PER_LINE; // wrapping int32 sequence of the next slot to read
export const CONSUMER_PARKED_I32 = READ_SEQ_I32 + 1; // consumer: 1 while it waits for data; the producer or supervisor clears it to wake it (park.ts)
export const RELEASED_LO_I32 = READ_SEQ_I32 + 2; // records released, low 32 bits
export const RELEASED_HI_I32 = READ_SEQ_I32 + 3; // 2 x high 32 bits, odd during a carry (ring.ts readCounter)
export const CONSUMER_PARKS_I32 = READ_SEQ_I32 + 4; // times the consumer parked on an empty ring

// line 3: supervisor-owned.
export const STATE_I32 = 3 * I32_PER_LINE; // RingState
export const HEARTBEAT_I32 = STATE_I32 + 1; // bumped by the supervisor; free for liveness checks

export const CTRL_BYTES = 4 * LINE_BYTES; // 512: the data region starts here, 128-aligned
export const CTRL_I32 = CTRL_BYTES / 4;

/**
 * Supervisor-set lifecycle of a ring.
 * - RUNNING: normal operation.
 * - DRAINING: the producer stops producing (it may still publish what it had claimed); the consumer keeps
 *   reading. A consumer must NOT stop at DRAINING even when the ring looks empty: the producer may be
 *   between its state check and its last publish.
 * - STOPPED: set once the producer has stopped (or was terminated); nothing more will be published, so
 *   the consumer stops once the ring is empty (`RingReader.finished`).
 */
export const RingState = { RUNNING: 1, DRAINING: 2, STOPPED: 3 } as const;
export type RingState = (typeof RingState)[keyof typeof RingState];

/** Largest slot count: sequences wrap at 2^32, occupancy math needs slots < 2^31. */
export const MAX_SLOT_COUNT = 1 << 30;
export const MAX_SLOT_BYTES = 1 << 16;

export const ringBytes = (slotCount: number, slotBytes: number): number => CTRL_BYTES + slotCount * slotBytes;
