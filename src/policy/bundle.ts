import { gunzipSync } from 'node:zlib';

/**
 * Reads an OPA bundle (`opa build -t wasm`: a gzipped tar holding /policy.wasm, /data.json and a
 * manifest). Plain ustar: 512-byte headers, octal sizes, data padded to 512 bytes.
 */
export interface WasmBundle {
  wasm: Uint8Array;
  data: unknown;
  files: string[];
}

export function readBundle(gz: Uint8Array): WasmBundle {
  let tar: Buffer;
  try {
    tar = gunzipSync(gz);
  } catch {
    throw new Error('not a gzip file');
  }
  const files = new Map<string, Buffer>();
  let offset = 0;
  while (offset + 512 <= tar.length) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const field = (start: number, length: number) => header.subarray(start, start + length).toString('utf8').replace(/\0.*$/s, '');
    const size = Number.parseInt(field(124, 12).trim() || '0', 8);
    const prefix = field(345, 155);
    const name = (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100)).replace(/^\.?\/+/, '');
    const type = field(156, 1);
    if (!Number.isFinite(size) || size < 0 || offset + 512 + size > tar.length) throw new Error('truncated tar archive');
    if (type === '' || type === '0') files.set(name, tar.subarray(offset + 512, offset + 512 + size));
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  const wasm = files.get('policy.wasm');
  if (!wasm) throw new Error('the bundle has no policy.wasm: build it with `opa build -t wasm -e writ/decision`');
  const dataFile = files.get('data.json');
  let data: unknown = {};
  if (dataFile) {
    try {
      data = JSON.parse(dataFile.toString('utf8'));
    } catch {
      throw new Error('the bundle\'s data.json is not valid JSON');
    }
  }
  return { wasm: new Uint8Array(wasm), data, files: [...files.keys()] };
}
