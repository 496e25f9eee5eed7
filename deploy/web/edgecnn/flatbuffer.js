// What the page reads from a .tflite file itself, with bounds-checked FlatBuffers reads (the
// layout edgecnn.runtime.flatbuffer_fields reads in Python): edgecnn's metadata entry (a JSON
// buffer: task, labels, input, decoding) and whether the standard TFLite Model Metadata that
// MediaPipe reads is there.

// TFLite schema field numbers
const MODEL = { buffers: 4, metadata: 6 };
const BUFFER = { data: 0, offset: 1, size: 2 };

export class FileError extends Error {}

class Reader {
  constructor(bytes) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  check(position, size) {
    if (position < 0 || position + size > this.bytes.length) {
      throw new FileError('the file is truncated or is not a .tflite model');
    }
  }
  u16(p) { this.check(p, 2); return this.view.getUint16(p, true); }
  u32(p) { this.check(p, 4); return this.view.getUint32(p, true); }
  i32(p) { this.check(p, 4); return this.view.getInt32(p, true); }
  u64(p) { this.check(p, 8); return Number(this.view.getBigUint64(p, true)); }
  ref(p) { return p + this.u32(p); }
  field(table, number) {
    const vtable = table - this.i32(table);
    const entry = 4 + 2 * number;
    if (entry + 2 > this.u16(vtable)) return null;  // a field newer than the file: absent
    const offset = this.u16(vtable + entry);
    return offset ? table + offset : null;
  }
  fieldRef(table, number) {
    const p = this.field(table, number);
    return p === null ? null : this.ref(p);
  }
  scalar(table, number, read, fallback = 0) {
    const p = this.field(table, number);
    return p === null ? fallback : read.call(this, p);
  }
  vectorLength(vector, elementSize) {
    const length = this.u32(vector);
    this.check(vector + 4, length * elementSize);
    return length;
  }
  tables(table, number) {
    const vector = this.fieldRef(table, number);
    if (vector === null) return [];
    return Array.from({ length: this.vectorLength(vector, 4) }, (_, i) => this.ref(vector + 4 + 4 * i));
  }
  bytesAt(vector) {
    return this.bytes.subarray(vector + 4, vector + 4 + this.vectorLength(vector, 1));
  }
  string(table, number) {
    const vector = this.fieldRef(table, number);
    return vector === null ? null : new TextDecoder().decode(this.bytesAt(vector));
  }
}

function root(reader) {
  if (reader.bytes.length < 8) throw new FileError('the file is too short to be a .tflite model');
  return reader.ref(0);
}

/** The bytes of the model's metadata entry `name`, or null when the file has none. */
export function metadataBuffer(bytes, name) {
  const reader = new Reader(bytes);
  const model = root(reader);
  for (const entry of reader.tables(model, MODEL.metadata)) {
    if (reader.string(entry, 0) !== name) continue;
    const index = reader.scalar(entry, 1, reader.u32);
    const buffers = reader.tables(model, MODEL.buffers);
    if (index >= buffers.length) throw new FileError(`metadata buffer ${index} of ${buffers.length}`);
    const data = reader.fieldRef(buffers[index], BUFFER.data);
    if (data !== null) return reader.bytesAt(data);
    // data kept after the flatbuffer (files over 2 GB)
    const offset = reader.scalar(buffers[index], BUFFER.offset, reader.u64);
    const size = reader.scalar(buffers[index], BUFFER.size, reader.u64);
    reader.check(offset, size);
    return bytes.subarray(offset, offset + size);
  }
  return null;
}

/** edgecnn's metadata document (see docs/reference.md), or null for a file without it. */
export function readMetadata(bytes) {
  const buffer = metadataBuffer(bytes, 'edgecnn');
  if (buffer === null) return null;
  try {
    return JSON.parse(new TextDecoder().decode(buffer));
  } catch (error) {
    throw new FileError(`the file's edgecnn metadata is not valid JSON (${error.message})`);
  }
}

/** Whether the file carries the standard TFLite Model Metadata that MediaPipe Tasks read. */
export function hasStandardMetadata(bytes) {
  return metadataBuffer(bytes, 'TFLITE_METADATA') !== null;
}
