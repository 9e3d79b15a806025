/**
 * Typed-array columns that grow in place. A resizable ArrayBuffer reserves address space up front and
 * commits pages as it grows: nothing is copied and nothing goes through the C allocator, whose heap a
 * column reallocated at each growth (a long-lived block among short-lived frame buffers) kept from ever
 * shrinking. A view made without a length tracks its buffer's size, so it stays valid across growth.
 * Where a resizable buffer cannot be had (or its reservation is used up), the column is copied into a
 * new one, reserving much more.
 */

/** A typed array constructor this module grows. */
export interface TypedArrayKind<T extends Float64Array | Int32Array | Uint16Array | Uint8Array> {
  new (buffer: ArrayBuffer): T;
  new (length: number): T;
  readonly BYTES_PER_ELEMENT: number;
}

/** Slots reserved for a column from the start (address space only: 8 MB for 64-bit values). */
const RESERVED_SLOTS = 1 << 20;

/** A buffer of `bytes` that may grow in place up to `maxBytes`, or a plain one where that is not possible. */
function allocate(bytes: number, maxBytes: number, resizable: boolean): ArrayBuffer {
  if (resizable) {
    try {
      return new ArrayBuffer(bytes, { maxByteLength: maxBytes });
    } catch {
      // No resizable buffers here, or no address space to reserve: a plain buffer, copied when it grows.
    }
  }
  return new ArrayBuffer(bytes);
}

/** An empty column (`resizable: false` forces the copying fallback, for tests). */
export function emptyColumn<T extends Float64Array | Int32Array | Uint16Array | Uint8Array>(kind: TypedArrayKind<T>, resizable = true): T {
  return new kind(allocate(0, RESERVED_SLOTS * kind.BYTES_PER_ELEMENT, resizable));
}

/**
 * `column` with room for `capacity` slots, the new ones set to `fill`: the same array grown in place
 * when its buffer allows, else a copy.
 */
export function grown<T extends Float64Array | Int32Array | Uint16Array | Uint8Array>(column: T, kind: TypedArrayKind<T>, capacity: number, fill = 0): T {
  const from = column.length;
  if (capacity <= from) return column;
  const bytes = capacity * kind.BYTES_PER_ELEMENT;
  const buffer = column.buffer as ArrayBuffer;
  let out: T;
  if (buffer.resizable && bytes <= buffer.maxByteLength) {
    buffer.resize(bytes);
    out = column;
  } else {
    out = new kind(allocate(bytes, Math.max(bytes, RESERVED_SLOTS * kind.BYTES_PER_ELEMENT, 8 * bytes), buffer.resizable));
    out.set(column);
  }
  if (fill !== 0) out.fill(fill, from);
  return out;
}

/** Whether `column` grows in place. */
export function growsInPlace(column: Float64Array | Int32Array | Uint16Array | Uint8Array): boolean {
  return (column.buffer as ArrayBuffer).resizable;
}
