// Large Buffers the API routes return as they are: built once, reused for every reply, so the
// zcSend plugin can send them without copying (and the kernel may read them after the reply ends).
import { createHash } from 'node:crypto';
import { deterministicBytes } from './samples.js';

export interface ApiBuffer {
  name: string;
  body: Buffer;
  sha256: string;
}

export const API_BUFFER_SIZES: Readonly<Record<string, number>> = {
  '64k': 64 << 10,
  '1m': 1 << 20,
  '4m': 4 << 20,
  '16m': 16 << 20,
};

/** Same generator as the sample files, seeded `blob:<name>`: tests recompute the bodies independently. */
export function apiBufferBytes(name: string, bytes: number): Buffer {
  return deterministicBytes(`blob:${name}`, bytes);
}

export function createApiBuffers(): Map<string, ApiBuffer> {
  const buffers = new Map<string, ApiBuffer>();
  for (const [name, bytes] of Object.entries(API_BUFFER_SIZES)) {
    const body = apiBufferBytes(name, bytes);
    buffers.set(name, { name, body, sha256: createHash('sha256').update(body).digest('hex') });
  }
  return buffers;
}
