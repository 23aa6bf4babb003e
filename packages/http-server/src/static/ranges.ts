// Range requests: which bytes a response carries, and the multipart/byteranges framing.
import parseRange from 'range-parser';
import { ifRangeHolds } from './conditional.js';
import type { Representation } from './representation.js';

/** Byte range with an exclusive end. */
export interface ByteRange {
  start: number;
  end: number;
}

export type RangeDecision =
  | { kind: 'full' }
  | { kind: 'single'; range: ByteRange }
  | { kind: 'multi'; ranges: ByteRange[] }
  | { kind: 'unsatisfiable' };

/** More ranges than this (after merging overlaps) get the whole file instead, as nginx's max_ranges does. */
export const MAX_RANGES = 64;

const FULL: RangeDecision = { kind: 'full' };
const UNSATISFIABLE: RangeDecision = { kind: 'unsatisfiable' };

export function decideRange(range: string | undefined, ifRange: string | undefined, rep: Representation): RangeDecision {
  if (range === undefined) return FULL;
  if (ifRange !== undefined && !ifRangeHolds(ifRange, rep)) return FULL;
  const parsed = parseRange(rep.size, range, { combine: true });
  if (parsed === -2) return FULL; // malformed: ignored, as RFC 9110 allows
  if (parsed === -1) return UNSATISFIABLE;
  if (parsed.type !== 'bytes' || parsed.length > MAX_RANGES) return FULL;
  if (parsed.length === 1) {
    const only = parsed[0]!;
    return { kind: 'single', range: { start: only.start, end: only.end + 1 } };
  }
  return { kind: 'multi', ranges: parsed.map((r) => ({ start: r.start, end: r.end + 1 })) };
}

export function contentRange(range: ByteRange, size: number): string {
  return `bytes ${range.start}-${range.end - 1}/${size}`;
}

export interface MultipartPart {
  /** Delimiter and part headers written before the part's bytes. */
  head: Buffer;
  range: ByteRange;
}

export interface MultipartLayout {
  contentType: string;
  parts: MultipartPart[];
  /** Closing delimiter. */
  tail: Buffer;
  /** Total body length (for Content-Length). */
  length: number;
}

export function multipartLayout(ranges: readonly ByteRange[], size: number, partType: string, boundary: string): MultipartLayout {
  let length = 0;
  const parts = ranges.map((range, i) => {
    const head = Buffer.from(`${i === 0 ? '' : '\r\n'}--${boundary}\r\nContent-Type: ${partType}\r\nContent-Range: ${contentRange(range, size)}\r\n\r\n`, 'latin1');
    length += head.length + (range.end - range.start);
    return { head, range };
  });
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');
  length += tail.length;
  return { contentType: `multipart/byteranges; boundary=${boundary}`, parts, tail, length };
}
