// Conditional requests, evaluated in the order RFC 9110 section 13.2.2 gives.
import type * as http from 'node:http';
import type { Representation } from './representation.js';

export type PreconditionResult = 'proceed' | 'not-modified' | 'failed';

/** Seconds since the epoch of an HTTP date, or null when absent or unreadable (then it is ignored). */
function httpDateSeconds(value: string | undefined): number | null {
  if (value === undefined) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
}

/** Entity tags in a list header; `*` comes back as ['*']. */
function eachTag(list: string, visit: (tag: string, weak: boolean) => boolean): boolean {
  for (const raw of list.split(',')) {
    const item = raw.trim();
    if (item === '*') {
      if (visit('*', false)) return true;
      continue;
    }
    const weak = item.startsWith('W/');
    if (visit(weak ? item.slice(2) : item, weak)) return true;
  }
  return false;
}

/** If-Match: strong comparison; a weak tag never matches. */
export function matchesStrong(list: string, etag: string): boolean {
  return eachTag(list, (tag, weak) => tag === '*' || (!weak && tag === etag));
}

/** If-None-Match: weak comparison (W/ ignored on both sides; ours is strong). */
export function matchesWeak(list: string, etag: string): boolean {
  return eachTag(list, (tag) => tag === '*' || tag === etag);
}

/** The request headers preconditions read (node:http's parsed headers, or the fast path's). */
export type PreconditionHeaders = Pick<http.IncomingHttpHeaders, 'if-match' | 'if-none-match' | 'if-modified-since' | 'if-unmodified-since'>;

export function evaluatePreconditions(headers: PreconditionHeaders, rep: Representation): PreconditionResult {
  const ifMatch = headers['if-match'];
  if (ifMatch !== undefined) {
    if (!matchesStrong(ifMatch, rep.etag)) return 'failed';
  } else {
    const since = httpDateSeconds(headers['if-unmodified-since']);
    if (since !== null && rep.mtimeSec > since) return 'failed';
  }
  const ifNoneMatch = headers['if-none-match'];
  if (ifNoneMatch !== undefined) {
    // Only GET and HEAD reach here, for which a match means 304.
    return matchesWeak(ifNoneMatch, rep.etag) ? 'not-modified' : 'proceed';
  }
  const modifiedSince = httpDateSeconds(headers['if-modified-since']);
  if (modifiedSince !== null && rep.mtimeSec <= modifiedSince) return 'not-modified';
  return 'proceed';
}

/** If-Range: the range applies only while the client's validator still names this version. */
export function ifRangeHolds(ifRange: string, rep: Representation): boolean {
  const value = ifRange.trim();
  if (value.startsWith('"')) return value === rep.etag;
  if (value.startsWith('W/')) return false; // weak validators never satisfy If-Range
  const date = httpDateSeconds(value);
  return date !== null && date === rep.mtimeSec;
}
