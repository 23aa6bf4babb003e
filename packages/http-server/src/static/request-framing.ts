// Requests whose body length cannot be known (RFC 9112 6.1).

/**
 * True when a request's Transfer-Encoding does not end in `chunked`: its body length cannot be
 * determined, and the server must answer 400 and close (RFC 9112 6.1). node:http's parser
 * rejects such a request too, but only after the handler has run, so without this check the
 * answer depended on whether the file's lookup was cached (a synchronous 200 went out first)
 * or not (the parser's 400). The rule is the parser's: the last coding is exactly `chunked`,
 * in any case, without parameters.
 */
export function unknownBodyLength(transferEncoding: string | string[] | undefined): boolean {
  if (transferEncoding === undefined) return false;
  const value = Array.isArray(transferEncoding) ? transferEncoding.join(',') : transferEncoding;
  // Only SP and HTAB are whitespace here (OWS), as for the parser: String.trim would also take a
  // latin1 NBSP, which the parser rejects.
  return value.slice(value.lastIndexOf(',') + 1).replace(OWS_AROUND, '').toLowerCase() !== 'chunked';
}

const OWS_AROUND = /^[ \t]+|[ \t]+$/g;
