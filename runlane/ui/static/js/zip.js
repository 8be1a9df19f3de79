// Reading a code snapshot (a zip) in the browser: the central directory for the file list, and one
// entry's bytes through DecompressionStream("deflate-raw"). Enough for the Code tab; no zip64.

export function listZip(buffer) {
  const view = new DataView(buffer);
  let eocd = -1;
  for (let i = buffer.byteLength - 22; i >= Math.max(0, buffer.byteLength - 65557); i -= 1) {
    if (view.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error("not a zip archive");
  const total = view.getUint16(eocd + 10, true);
  let at = view.getUint32(eocd + 16, true);
  const decoder = new TextDecoder();
  const entries = [];
  for (let n = 0; n < total; n += 1) {
    if (view.getUint32(at, true) !== 0x02014b50) break;
    const method = view.getUint16(at + 10, true);
    const compressed = view.getUint32(at + 20, true);
    const size = view.getUint32(at + 24, true);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    const offset = view.getUint32(at + 42, true);
    const name = decoder.decode(new Uint8Array(buffer, at + 46, nameLength));
    if (!name.endsWith("/")) entries.push({ name, method, compressed, size, offset });
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries.sort((a, b) => a.name.localeCompare(b.name));
}

export async function readEntry(buffer, entry) {
  const view = new DataView(buffer);
  const start = entry.offset + 30 + view.getUint16(entry.offset + 26, true) + view.getUint16(entry.offset + 28, true);
  const raw = new Uint8Array(buffer, start, entry.compressed);
  if (entry.method === 0) return raw;
  if (entry.method !== 8) throw new Error(`compression method ${entry.method} is not supported`);
  const stream = new Blob([raw]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
