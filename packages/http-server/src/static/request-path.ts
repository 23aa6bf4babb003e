// Turns the path of a request target into safe path segments below the root, or refuses it.
// Everything hostile is decided here, before the filesystem is touched: percent-encoded `..`,
// backslashes, NUL and control bytes, invalid UTF-8 (overlong encodings) and overlong paths.

/** Longest decoded path accepted (Linux PATH_MAX) and longest single name (NAME_MAX). */
export const MAX_PATH_BYTES = 4096;
export const MAX_SEGMENT_BYTES = 255;

export type ParsedPath =
  | { ok: true; segments: string[]; trailingSlash: boolean }
  | { ok: false; status: 400 };

const BAD: ParsedPath = { ok: false, status: 400 };

// NUL, other C0 controls and DEL after decoding; the HTTP parser already refuses them raw.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** `rawPath` is the request target up to (not including) `?`. */
export function parseRequestPath(rawPath: string): ParsedPath {
  if (rawPath.length === 0 || rawPath.charCodeAt(0) !== 47 /* / */) return BAD;
  // A percent-encoded path can be three times its decoded length; anything longer is refused unread.
  if (rawPath.length > MAX_PATH_BYTES * 3) return BAD;
  let decoded: string;
  if (rawPath.includes('%')) {
    try {
      decoded = decodeURIComponent(rawPath);
    } catch {
      return BAD; // malformed escapes and invalid UTF-8, overlong encodings such as %c0%ae included
    }
  } else {
    decoded = rawPath;
  }
  if (decoded.includes('\\') || CONTROL.test(decoded)) return BAD;
  if (Buffer.byteLength(decoded) > MAX_PATH_BYTES) return BAD;

  const parts = decoded.split('/');
  const segments: string[] = [];
  for (const part of parts) {
    if (part === '' || part === '.') continue; // merge slashes, drop `.` like nginx
    if (part === '..') return BAD; // never resolved upwards, even where it would stay inside the root
    if (part.length > MAX_SEGMENT_BYTES && Buffer.byteLength(part) > MAX_SEGMENT_BYTES) return BAD;
    segments.push(part);
  }
  return { ok: true, segments, trailingSlash: decoded.endsWith('/') };
}

/** True when any segment names a dotfile or dot-directory. */
export function hasDotSegment(segments: readonly string[]): boolean {
  for (const s of segments) if (s.charCodeAt(0) === 46 /* . */) return true;
  return false;
}

/** The canonical URL path of `segments` (percent-encoded), for redirects and listings. */
export function encodePath(segments: readonly string[], trailingSlash: boolean): string {
  let out = '';
  for (const s of segments) out += '/' + encodeURIComponent(s);
  return trailingSlash || segments.length === 0 ? out + '/' : out;
}
