// Deterministic, incompressible-looking bodies: the servers build them and the harness checks
// the sha256 of what comes back, without sharing memory or files.
import { createHash } from 'node:crypto';

/** xorshift32 bytes from a fixed seed: same size → same bytes in every process. */
export function patternBody(size: number): Buffer {
  const body = Buffer.allocUnsafe(size);
  let x = 0x9e3779b9 ^ size;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    if (i + 4 <= size) body.writeUInt32LE(x, i);
    else for (let j = 0; i + j < size; j++) body[i + j] = (x >>> (8 * j)) & 0xff;
  }
  return body;
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
