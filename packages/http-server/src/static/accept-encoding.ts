// Accept-Encoding negotiation for precompressed siblings. Clients send few distinct header values,
// so decisions are memoized per (header, available encodings).
import type { Encoding } from './options.js';

const memo = new Map<string, Encoding | null>();
const MEMO_LIMIT = 256;

function qualities(header: string): Map<string, number> {
  const q = new Map<string, number>();
  for (const item of header.split(',')) {
    const [codingRaw, ...params] = item.split(';');
    const coding = codingRaw!.trim().toLowerCase();
    if (!coding) continue;
    let weight = 1;
    for (const p of params) {
      const [k, v] = p.split('=');
      if (k?.trim().toLowerCase() === 'q') {
        const n = Number(v?.trim());
        weight = Number.isFinite(n) ? Math.min(Math.max(n, 0), 1) : 0;
      }
    }
    q.set(coding === 'x-gzip' ? 'gzip' : coding, weight);
  }
  return q;
}

/**
 * The best of `available` (in server preference order) that the client accepts with a quality above
 * zero and not below an explicit identity quality, or null for the unencoded file.
 */
export function chooseEncoding(header: string | undefined, available: readonly Encoding[]): Encoding | null {
  if (!header || available.length === 0) return null;
  const key = available.length === 1 ? `${available[0]}|${header}` : `${available.join(',')}|${header}`;
  const cached = memo.get(key);
  if (cached !== undefined) return cached;

  const q = qualities(header);
  const star = q.get('*');
  // identity wins only when the client ranks it explicitly above every encoding we have.
  const identity = q.get('identity') ?? 0;
  let best: Encoding | null = null;
  let bestQ = 0;
  for (const enc of available) {
    const weight = q.get(enc) ?? star ?? 0;
    if (weight > bestQ) {
      best = enc;
      bestQ = weight;
    }
  }
  const choice = best !== null && bestQ >= identity ? best : null;
  if (memo.size >= MEMO_LIMIT) memo.clear();
  memo.set(key, choice);
  return choice;
}
