// The dropped file's reader (src/workers/blob-source.ts): the rows' chunks
// read into two buffers that take turns give the same bytes, and the same
// summary, as reading each into memory of its own.
import { test } from "node:test";
import assert from "node:assert/strict";
import { blobSource, readersHeld } from "../src/workers/blob-source.js";
import { bytesSource, planLogits, streamLogits, summaryForPlan, type ByteSource } from "../src/lib/io/stream.js";
import { writeNpy } from "../src/lib/io/npy.js";
import { normalGenerator } from "../src/lib/random.js";

const bytes = Uint8Array.from({ length: 100_003 }, (_, i) => (i * 7 + (i >> 9)) % 251);

test("readChunk gives the bytes read gives, and reuses the memory of the chunk before last", async () => {
  const source = blobSource(new Blob([bytes]), "bytes.bin");
  assert.equal(source.size, bytes.length);
  const chunks: Uint8Array[] = [];
  for (const [start, end] of [
    [0, 30_000],
    [30_000, 60_000],
    [60_000, 90_000],
    [90_000, 100_003], // a shorter last chunk fits the turn's buffer
    [5, 6],
  ]) {
    const chunk = await source.readChunk!(start, end);
    assert.deepEqual(chunk, bytes.subarray(start, end), `${start}–${end}`);
    assert.deepEqual(await source.read(start, end), bytes.subarray(start, end));
    chunks.push(chunk);
  }
  // Each read went into the buffer of the chunk before last (which the read moved and gave back): the
  // first three chunks' memory now holds the third, fourth and fifth, and only the last two are readable.
  assert.deepEqual(
    chunks.map((c) => c.byteLength),
    [0, 0, 0, 10_003, 1],
  );
  assert.deepEqual(
    chunks.slice(3).map((c) => c.buffer.byteLength),
    [30_000, 30_000],
    "no buffer was made after the first two",
  );
});

test("a blob whose stream is not a byte stream is read into fresh memory, with the same bytes", async () => {
  const blob = new Blob([bytes]);
  // A stand-in for a browser whose Blob.stream() gives a plain stream: getReader({ mode: "byob" }) throws there.
  const plainStreams = {
    size: blob.size,
    slice: (start: number, end: number) => {
      const part = blob.slice(start, end);
      return Object.assign(part, { stream: () => new ReadableStream({ start: (c) => c.close() }) });
    },
  } as unknown as Blob;
  const source = blobSource(plainStreams, "plain.bin");
  for (let i = 0; i < 4; i++)
    assert.deepEqual(await source.readChunk!(i * 100, i * 100 + 77), bytes.subarray(i * 100, i * 100 + 77));
});

test("a file streamed from a blob source summarises as the same bytes in memory, in chunks of any size", async () => {
  const [layers, tokens, experts, topK] = [3, 500, 8, 2];
  const normal = normalGenerator(5);
  const data = Float32Array.from({ length: layers * tokens * experts }, () => 1.5 * normal());
  const file = writeNpy(data, [layers, tokens, experts]);
  const summaryOf = async (source: ByteSource, chunkBytes: number) => {
    const plan = await planLogits(source);
    const builder = summaryForPlan(plan, topK, [200, 300]);
    await streamLogits(source, plan, (values, count) => builder.addRows(values, 0, count), undefined, { chunkBytes });
    return builder.finish();
  };
  const expected = await summaryOf(bytesSource(file, "logits.npy"), 1 << 20);
  for (const chunkBytes of [32, 4096, 10_000, 1 << 20])
    assert.deepEqual(
      await summaryOf(blobSource(new Blob([Uint8Array.from(file)]), "logits.npy"), chunkBytes),
      expected,
      `${chunkBytes}`,
    );
});

test("a chunk's reader is held from the module while its read is under way, and let go after", async () => {
  // Chromium collects a blob's byte stream with a pending read that nothing reaches, and the read never settles.
  const source = blobSource(new Blob([bytes]), "bytes.bin");
  const pending = source.readChunk!(0, 50_000);
  assert.equal(readersHeld(), 1);
  assert.deepEqual(await pending, bytes.subarray(0, 50_000));
  assert.equal(readersHeld(), 0);
});
