/**
 * Streaming decoder of Sierra Chart `.depth` files into ring slots.
 *
 * Pure and independent of threads and files: the caller `push()`es chunks of the file (any size, as the
 * tailer or a backfill read them) and calls `decodeInto(ring)` until `pendingRecords` is 0. Each record
 * becomes one `RecordKind.DEPTH` slot (seq = DEPTH_SRC_INDEX = record index in the file), and each
 * end-of-batch record is followed by one `RecordKind.BOOK_END` slot (records in the batch, snapshot = 1
 * when the batch began with CLEAR_BOOK). A DEPTH slot flagged end-of-batch and its BOOK_END are always
 * claimed and published together: a full ring stops the decoder *before* such a record, never between
 * the two slots.
 *
 * - Back-pressure: `decodeInto` claims once per call (slots for as many records as the ring takes, with
 *   a quick pre-scan of the flag bytes to count the BOOK_END slots), publishes once, and returns the
 *   number of records decoded. A short claim is not an error: state is kept and the next call resumes.
 * - Chunks: a record split across chunks is carried in a small fixed scratch (a record is 24 bytes; the
 *   format never grows it) and completed from the head of the next chunk. The caller may reuse its read
 *   buffer once `pendingRecords` is 0: the partial tail has been copied out by then.
 * - Hot loop: a DataView and a Uint8Array over the chunk's ArrayBuffer, created only when the buffer
 *   changes; cursor and counters in locals; one module-level slot writer call per record; no objects,
 *   closures or BigInt per record.
 * - Errors are coded (`ENGINE_ERR_DEPTH_FORMAT`, detail `{ file, byteOffset }`) and sticky: a bad header
 *   or a command byte above 7 stops the decoder at that byte; records before it were published.
 * - Checkpoints: `bytesConsumed` (file offset after the last record handed to the ring) and
 *   `nextRecordIndex`. A resumed decoder (`startRecordIndex`) still validates the header; the caller may
 *   then `push(chunk, decoder.nextReadOffset)` to jump over the records it already has.
 * - Batches are not atomic in the ring (a batch can span publishes); atomicity is the consumer's job
 *   (engine/book OrderBook applies at the end-of-batch record). `committedRecordIndex` is the index after
 *   the last end-of-batch record, `lastSnapshotRecordIndex` the first record of the last complete
 *   snapshot batch: a restart that must rebuild a book replays from there.
 */
import { engineError, type EngineError } from '../../engine/errors.ts';
import type { RingWriter } from '../../engine/ring/ring.ts';
import { DEPTH_FLAG_END_OF_BATCH, DepthCommand, RECORD_SLOT_BYTES, writeBookEnd, writeDepth } from '../../schemas/records.ts';
import {
  DEPTH_HEADER_FIELD_BYTES, DEPTH_RECORD_BYTES, HDR_HEADER_SIZE_BYTE, MAX_DEPTH_COMMAND, REC_COMMAND_BYTE,
  REC_DATETIME_HI_BYTE, REC_DATETIME_LO_BYTE, REC_FLAGS_BYTE, REC_NUM_ORDERS_BYTE, REC_PRICE_BYTE, REC_QUANTITY_BYTE,
  SC_EPOCH_TO_UNIX_MICROS, depthFormatError, parseDepthHeader, type DepthHeader,
} from './depth-format.ts';

export interface DepthDecoderOptions {
  /** Named in every error (the path, or the file name). */
  fileName: string;
  /** Source table index written in every slot (u8, default 0). */
  sourceId?: number;
  /** Symbol id written in every slot (u16, default 0). */
  symbolId?: number;
  /** Multiplier applied to every stored price (feeds that store prices ×100 need 0.01). Default 1. */
  priceMultiplier?: number;
  /** Checkpoint: records before this index were already handed on; they are skipped, not emitted. */
  startRecordIndex?: number;
  /** Size of the whole file when known: a HeaderSize or checkpoint beyond it is reported at once. */
  fileBytes?: number;
  /** Most slots claimed per `decodeInto` call (default and maximum: the ring's slot count). */
  maxBatchSlots?: number;
}

const REC = DEPTH_RECORD_BYTES;
const EOB = DEPTH_FLAG_END_OF_BATCH;
const CLEAR_BOOK = DepthCommand.CLEAR_BOOK;
const TWO_POW_32 = 4294967296;

const S_HEADER = 0; // collecting the 16 header field bytes
const S_SKIP = 1; // skipping reserved header bytes and checkpointed records
const S_RECORDS = 2;

const EMPTY_BUFFER = new ArrayBuffer(0);

function checkInt(name: string, v: number, lo: number, hi: number): number {
  if (!Number.isInteger(v) || v < lo || v > hi) {
    throw engineError('ENGINE_ERR_INVALID_ARG', `${name} must be an integer in [${lo}, ${hi}], got ${String(v)}`, { [name]: String(v) });
  }
  return v;
}

export class DepthDecoder {
  readonly fileName: string;
  readonly #sourceId: number;
  readonly #symbolId: number;
  readonly #mult: number;
  readonly #startRecordIndex: number;
  readonly #fileBytes: number | undefined;
  readonly #maxBatchSlots: number;

  #state = S_HEADER;
  #error: EngineError | null = null;
  #header: DepthHeader | null = null;

  // current chunk: [#pos, #end) are absolute indices into #u8 / #dv (views over the chunk's whole buffer)
  #buffer: ArrayBufferLike = EMPTY_BUFFER;
  #u8: Uint8Array = new Uint8Array(EMPTY_BUFFER);
  #dv: DataView = new DataView(EMPTY_BUFFER);
  #pos = 0;
  #end = 0;

  // scratch: the header's field bytes (S_HEADER) or a record split across chunks (S_RECORDS)
  readonly #scratch = new Uint8Array(64);
  readonly #scratchDv = new DataView(this.#scratch.buffer);
  #carryLen = 0;
  #skip = 0;

  /** File offset of the byte after the last pushed one. */
  #fileOff = 0;
  #recordIndex: number;
  #batchRecords = 0;
  #batchSnapshot = 0;
  #batchStartIndex = 0;
  #committedRecordIndex: number;
  #lastSnapshotRecordIndex = -1;
  #slotsPublished = 0;
  /** Set by #run when it stops at a corrupt record; thrown after the good slots are published. */
  #runError: EngineError | null = null;
  #runDone = 0;

  constructor(opts: DepthDecoderOptions) {
    if (typeof opts.fileName !== 'string' || opts.fileName.length === 0) {
      throw engineError('ENGINE_ERR_INVALID_ARG', 'DepthDecoder needs a fileName');
    }
    this.fileName = opts.fileName;
    this.#sourceId = checkInt('sourceId', opts.sourceId ?? 0, 0, 0xff);
    this.#symbolId = checkInt('symbolId', opts.symbolId ?? 0, 0, 0xffff);
    const mult = opts.priceMultiplier ?? 1;
    if (!Number.isFinite(mult) || mult <= 0) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `priceMultiplier must be a finite number above 0, got ${String(mult)}`);
    }
    this.#mult = mult;
    this.#startRecordIndex = checkInt('startRecordIndex', opts.startRecordIndex ?? 0, 0, Number.MAX_SAFE_INTEGER);
    this.#fileBytes = opts.fileBytes === undefined ? undefined : checkInt('fileBytes', opts.fileBytes, 0, Number.MAX_SAFE_INTEGER);
    this.#maxBatchSlots = checkInt('maxBatchSlots', opts.maxBatchSlots ?? 0x7fffffff, 2, 0x7fffffff);
    this.#recordIndex = this.#startRecordIndex;
    this.#committedRecordIndex = this.#startRecordIndex;
    this.#batchStartIndex = this.#startRecordIndex;
  }

  /** The validated header, once its field bytes have been pushed. */
  get header(): DepthHeader | null { return this.#header; }
  /** Index of the next record to decode (a checkpoint). */
  get nextRecordIndex(): number { return this.#recordIndex; }
  /** File offset just after everything handed on (header, skipped and decoded records): a checkpoint. */
  get bytesConsumed(): number { return this.#fileOff - this.pendingBytes; }
  /** Bytes pushed but not consumed yet: undecoded whole records plus a partial trailing record. */
  get pendingBytes(): number { return this.#carryLen + (this.#end - this.#pos); }
  /** Whole records waiting for ring space. `push()` is allowed only when this is 0. */
  get pendingRecords(): number {
    if (this.#state !== S_RECORDS) return 0;
    return (this.#carryLen === REC ? 1 : 0) + Math.floor((this.#end - this.#pos) / REC);
  }
  /** File offset the next pushed chunk should start at (past the records a checkpoint skips). */
  get nextReadOffset(): number { return this.#state === S_SKIP && this.#pos === this.#end ? this.#fileOff + this.#skip : this.#fileOff; }
  /** Index after the last end-of-batch record decoded. */
  get committedRecordIndex(): number { return this.#committedRecordIndex; }
  /** First record of the last complete batch that began with CLEAR_BOOK, or -1. */
  get lastSnapshotRecordIndex(): number { return this.#lastSnapshotRecordIndex; }
  /** Records decoded since the last end-of-batch record (the batch still open). */
  get openBatchRecords(): number { return this.#batchRecords; }
  /** Slots published in total (DEPTH plus BOOK_END). */
  get slotsPublished(): number { return this.#slotsPublished; }

  /** File offset of record `index` (needs the header). */
  recordOffset(index: number): number {
    if (this.#header === null) throw engineError('ENGINE_ERR_INVALID_ARG', `${this.fileName}: record offsets need the header first`);
    return this.#header.headerBytes + index * REC;
  }

  /**
   * Hand the decoder the next bytes of the file. `fileOffset` (default: right after the previous chunk)
   * may jump forward only over bytes the decoder would skip anyway (reserved header bytes and the records
   * before `startRecordIndex`); see `nextReadOffset`. Header errors are thrown here. The chunk is not
   * copied (except a partial trailing record): keep it unchanged until `pendingRecords` is 0.
   */
  push(chunk: Uint8Array, fileOffset?: number): void {
    if (this.#error !== null) throw this.#error;
    if (this.#pos !== this.#end || (this.#state === S_RECORDS && this.#carryLen === REC)) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `${this.fileName}: push() while ${this.pendingRecords} decoded records are still waiting for ring space; call decodeInto() until pendingRecords is 0`, { file: this.fileName });
    }
    if (fileOffset !== undefined && fileOffset !== this.#fileOff) {
      const gap = fileOffset - this.#fileOff;
      if (this.#state !== S_SKIP || !(gap > 0) || gap > this.#skip) {
        throw engineError('ENGINE_ERR_INVALID_ARG', `${this.fileName}: chunk at byte ${fileOffset} does not follow byte ${this.#fileOff} (only skipped bytes may be jumped over)`, { file: this.fileName, byteOffset: fileOffset });
      }
      this.#skip -= gap;
      this.#fileOff = fileOffset;
      if (this.#skip === 0) this.#state = S_RECORDS;
    }
    if (chunk.buffer !== this.#buffer) {
      this.#buffer = chunk.buffer;
      this.#u8 = new Uint8Array(chunk.buffer);
      this.#dv = new DataView(chunk.buffer);
    }
    this.#pos = chunk.byteOffset;
    this.#end = chunk.byteOffset + chunk.length;
    this.#fileOff += chunk.length;
    this.#settle();
  }

  /**
   * The bytes pushed so far are the whole file (for now: a live file may still grow and more may be
   * pushed later). Throws a coded error for an empty file, a file that ends inside its header, or a
   * checkpoint beyond the end. A partial trailing record is not an error: it stays pending.
   */
  endOfInput(): void {
    if (this.#error !== null) throw this.#error;
    const file = this.fileName;
    if (this.#state === S_HEADER) {
      throw this.#fileOff === 0
        ? depthFormatError(file, 0, 'empty file, no SCDD header')
        : depthFormatError(file, this.#fileOff, `file ends after ${this.#fileOff} bytes, inside the header`);
    }
    if (this.#state === S_SKIP) {
      const h = this.#header;
      if (h !== null && this.#fileOff < h.headerBytes) {
        throw depthFormatError(file, HDR_HEADER_SIZE_BYTE, `header size ${h.headerBytes} is beyond the end of the file (${this.#fileOff} bytes)`, { headerBytes: h.headerBytes, fileBytes: this.#fileOff });
      }
      throw engineError('ENGINE_ERR_FILE_TRUNCATED', `${file}: checkpoint at record ${this.#startRecordIndex} is beyond the end of the file (${this.#fileOff} bytes)`, { file, byteOffset: this.#fileOff + this.#skip, recordIndex: this.#startRecordIndex });
    }
  }

  /**
   * Decode as many whole records as the ring has room for; returns the number of records decoded (0
   * when there is nothing to do or the ring is full: check `pendingRecords`). Throws the sticky coded
   * error at a corrupt record, after publishing the good records before it.
   */
  decodeInto(w: RingWriter): number {
    if (this.#error !== null) throw this.#error;
    if (this.#state !== S_RECORDS) return 0;
    if (w.slotBytes < RECORD_SLOT_BYTES) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `ring slots of ${w.slotBytes} bytes cannot hold ${RECORD_SLOT_BYTES}-byte records`);
    }
    const carry = this.#carryLen === REC ? 1 : 0;
    const avail = carry + Math.floor((this.#end - this.#pos) / REC);
    if (avail === 0) return 0;

    // Pre-scan the flag bytes: one slot per record plus one per end-of-batch record, up to the cap.
    const cap = w.slotCount < this.#maxBatchSlots ? w.slotCount : this.#maxBatchSlots;
    const u8 = this.#u8;
    let need = 0;
    let recs = 0;
    if (carry === 1) { need = 1 + (this.#scratch[REC_FLAGS_BYTE]! & EOB); recs = 1; }
    for (let p = this.#pos + REC_FLAGS_BYTE; recs < avail; p += REC) {
      const s = 1 + (u8[p]! & EOB);
      if (need + s > cap) break;
      need += s;
      recs++;
    }
    const got = w.claim(need);
    if (got === 0) return 0;

    let slot = 0;
    let done = 0;
    this.#runError = null;
    if (carry === 1) {
      // The carried record sits just before #pos in the file.
      slot = this.#run(w, this.#scratchDv, this.#scratch, 0, 1, got, 0, this.#fileOff - (this.#end - this.#pos) - REC);
      if (this.#runDone === 1) { this.#carryLen = 0; done = 1; }
    }
    if (done === carry && this.#runError === null && recs > carry) {
      slot = this.#run(w, this.#dv, u8, this.#pos, recs - carry, got, slot, this.#fileOff - (this.#end - this.#pos));
      this.#pos += this.#runDone * REC;
      done += this.#runDone;
    }
    w.publish(slot);
    this.#slotsPublished += slot;
    if (this.#runError !== null) {
      this.#error = this.#runError;
      throw this.#runError;
    }
    this.#settle();
    return done;
  }

  /**
   * The hot loop: decode `count` records starting at absolute byte `p0` of `u8`/`dv` into slots
   * `slot0 ..` (of `got` claimed). Stops before a record whose slots do not fit (an end-of-batch record
   * needs two) or at a corrupt record. Returns the next slot index; records decoded go in #runDone.
   */
  #run(w: RingWriter, dv: DataView, u8: Uint8Array, p0: number, count: number, got: number, slot0: number, fileBase: number): number {
    const v = w.views;
    const src = this.#sourceId;
    const sym = this.#symbolId;
    const mult = this.#mult;
    let idx = this.#recordIndex;
    let br = this.#batchRecords;
    let bs = this.#batchSnapshot;
    let slot = slot0;
    let p = p0;
    let i = 0;
    for (; i < count; i++, p += REC) {
      const flags = u8[p + REC_FLAGS_BYTE]!;
      const eob = flags & EOB;
      if (slot + 1 + eob > got) break;
      const cmd = u8[p + REC_COMMAND_BYTE]!;
      if (cmd > MAX_DEPTH_COMMAND) {
        this.#runError = depthFormatError(this.fileName, fileBase + (p - p0), `record ${idx} has command ${cmd} (valid: 0..${MAX_DEPTH_COMMAND})`, { recordIndex: idx, command: cmd });
        break;
      }
      const tsMicros = dv.getInt32(p + REC_DATETIME_HI_BYTE, true) * TWO_POW_32 + dv.getUint32(p + REC_DATETIME_LO_BYTE, true) - SC_EPOCH_TO_UNIX_MICROS;
      writeDepth(
        v, w.slotByte(slot), src, sym, idx, tsMicros, cmd, flags, dv.getUint16(p + REC_NUM_ORDERS_BYTE, true),
        dv.getFloat32(p + REC_PRICE_BYTE, true) * mult, dv.getUint32(p + REC_QUANTITY_BYTE, true), idx,
      );
      if (br === 0) { bs = cmd === CLEAR_BOOK ? 1 : 0; this.#batchStartIndex = idx; }
      br++;
      if (eob !== 0) {
        writeBookEnd(v, w.slotByte(slot + 1), src, sym, idx, tsMicros, br, bs, idx);
        if (bs === 1) this.#lastSnapshotRecordIndex = this.#batchStartIndex;
        br = 0;
        slot += 2;
        this.#committedRecordIndex = idx + 1;
      } else {
        slot++;
      }
      idx++;
    }
    this.#recordIndex = idx;
    this.#batchRecords = br;
    this.#batchSnapshot = bs;
    this.#runDone = i;
    return slot;
  }

  /** Consume header/skip bytes and move a partial trailing record into the scratch. No ring needed. */
  #settle(): void {
    if (this.#state === S_HEADER) {
      const take = Math.min(DEPTH_HEADER_FIELD_BYTES - this.#carryLen, this.#end - this.#pos);
      this.#scratch.set(this.#u8.subarray(this.#pos, this.#pos + take), this.#carryLen);
      this.#carryLen += take;
      this.#pos += take;
      if (this.#carryLen < DEPTH_HEADER_FIELD_BYTES) return;
      let h: DepthHeader;
      try {
        h = parseDepthHeader(this.#scratch.subarray(0, DEPTH_HEADER_FIELD_BYTES), this.fileName, this.#fileBytes);
      } catch (err) {
        this.#error = err as EngineError;
        throw err;
      }
      const first = h.headerBytes + this.#startRecordIndex * REC;
      if (this.#fileBytes !== undefined && first > this.#fileBytes) {
        this.#error = engineError('ENGINE_ERR_FILE_TRUNCATED', `${this.fileName}: checkpoint at record ${this.#startRecordIndex} (byte ${first}) is beyond the end of the file (${this.#fileBytes} bytes)`, { file: this.fileName, byteOffset: first, recordIndex: this.#startRecordIndex });
        throw this.#error;
      }
      this.#header = h;
      this.#carryLen = 0;
      this.#skip = first - DEPTH_HEADER_FIELD_BYTES;
      this.#state = this.#skip > 0 ? S_SKIP : S_RECORDS;
    }
    if (this.#state === S_SKIP) {
      const take = Math.min(this.#skip, this.#end - this.#pos);
      this.#pos += take;
      this.#skip -= take;
      if (this.#skip > 0) return;
      this.#state = S_RECORDS;
    }
    // S_RECORDS: complete a carried record from the chunk's head, or carry a short tail.
    const left = this.#end - this.#pos;
    if (this.#carryLen > 0 && this.#carryLen < REC && left > 0) {
      const take = Math.min(REC - this.#carryLen, left);
      this.#scratch.set(this.#u8.subarray(this.#pos, this.#pos + take), this.#carryLen);
      this.#carryLen += take;
      this.#pos += take;
      return;
    }
    if (this.#carryLen === 0 && left > 0 && left < REC) {
      this.#scratch.set(this.#u8.subarray(this.#pos, this.#end), 0);
      this.#carryLen = left;
      this.#pos = this.#end;
    }
  }
}
