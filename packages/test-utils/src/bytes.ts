import { createHash, randomFillSync } from 'node:crypto';

/** `n` random bytes (filled in 1 GiB steps: one randomFillSync call stops below 2 GiB). */
export function randomBytes(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let off = 0; off < n; off += 1 << 30) randomFillSync(b, off, Math.min(1 << 30, n - off));
  return b;
}

/** Hex sha256 of the parts, concatenated. */
export function sha256(...parts: Array<Uint8Array | string>): string {
  const hash = createHash('sha256');
  for (const p of parts) hash.update(p);
  return hash.digest('hex');
}
