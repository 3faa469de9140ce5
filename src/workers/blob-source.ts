/**
 * A Blob (the file a reader dropped on the page) read by ranges. The rows'
 * chunks (`readChunk`) are read into two buffers that take turns, through the
 * blob's byte stream, rather than each into memory of its own
 * (`blob.slice().arrayBuffer()`): fresh memory is what costs here. In a
 * Chromium worker, 512 MB in 16 MB chunks took 3.2–5.0 s by `arrayBuffer()`
 * and 0.34–0.36 s into two reused buffers (a page of memory touched for the
 * first time costs ~15.5 µs on the lab's machine, and every chunk was 4,096
 * of them). The your-logits page's 1 GiB file, from choosing it to the
 * numbers: 7.26 against 9.09 s (medians of 4 interleaved visits).
 */
import type { ByteSource } from "../lib/io/stream.js";

/**
 * `blob` as a `ByteSource`: `read` gives bytes of their own, `readChunk` bytes
 * that stay valid only until `readChunk` has been called twice more (the
 * contract `streamLogits` keeps: it holds one chunk while the next is read).
 */
export function blobSource(blob: Blob, name: string): ByteSource {
  const turns = new TakingTurns();
  return {
    name,
    size: blob.size,
    read: async (start, end) => new Uint8Array(await blob.slice(start, end).arrayBuffer()),
    readChunk: (start, end) => turns.read(blob.slice(start, end)),
  };
}

/**
 * The readers with a read under way, held from the module (a root): Chromium
 * 156 lets a blob's byte stream be collected while a BYOB read on it is
 * pending when nothing else reaches it, and that read then never settles. A
 * 512 MB float16 file, whose chunks each decoded into 32 MB of fresh float32,
 * stalled every time at 160 MB with the processor idle; held here, it read
 * to the end (two visits each).
 */
const reading = new Set<ReadableStreamBYOBReader>();

/** How many readers are held for a read under way (for the tests). */
export function readersHeld(): number {
  return reading.size;
}

/** Two buffers, each chunk read into the one the chunk before last used. */
class TakingTurns {
  /** The last two chunks' buffers, oldest first. */
  private recent: ArrayBuffer[] = [];

  async read(part: Blob): Promise<Uint8Array> {
    const free = this.recent.length === 2 ? this.recent.shift() : undefined;
    const { buffer, filled } = await fill(
      part,
      free && free.byteLength >= part.size ? free : new ArrayBuffer(part.size),
    );
    this.recent.push(buffer);
    return new Uint8Array(buffer, 0, filled);
  }
}

/**
 * Reads `part` into `buffer` and returns the buffer (a read moves it into the
 * stream and gives it back as another object) and the bytes read: fewer than
 * `part.size` only if the blob ended early. A browser whose blob streams are
 * not byte streams gets a fresh buffer instead.
 */
async function fill(part: Blob, buffer: ArrayBuffer): Promise<{ buffer: ArrayBuffer; filled: number }> {
  let reader: ReadableStreamBYOBReader;
  try {
    reader = part.stream().getReader({ mode: "byob" });
  } catch {
    const bytes = await part.arrayBuffer();
    return { buffer: bytes, filled: bytes.byteLength };
  }
  let filled = 0;
  reading.add(reader);
  try {
    while (filled < part.size) {
      const { done, value } = await reader.read(new Uint8Array(buffer, filled, part.size - filled));
      if (value) buffer = value.buffer as ArrayBuffer;
      if (done || !value) break;
      filled += value.byteLength;
    }
  } finally {
    reading.delete(reader);
    reader.releaseLock();
  }
  return { buffer, filled };
}
