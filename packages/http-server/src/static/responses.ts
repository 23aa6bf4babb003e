// Fixed status responses: short plain-text bodies, no filesystem paths, no stack traces.
import { STATUS_CODES } from 'node:http';

export interface StatusResponse {
  headers: string[];
  body: Buffer;
}

export type ErrorStatus = 400 | 403 | 404 | 405 | 412 | 416 | 500;

const ERROR_STATUSES: readonly ErrorStatus[] = [400, 403, 404, 405, 412, 416, 500];

/** `common` goes on every response (CORS); `allow` is the Allow header of 405. */
export function statusResponses(common: readonly string[], allow: string): Map<ErrorStatus, StatusResponse> {
  const map = new Map<ErrorStatus, StatusResponse>();
  for (const status of ERROR_STATUSES) {
    const body = Buffer.from(`${STATUS_CODES[status] ?? 'Error'}\n`);
    const headers = [
      'Content-Type', 'text/plain; charset=utf-8',
      'Content-Length', String(body.length),
      'X-Content-Type-Options', 'nosniff',
      ...(status === 405 ? ['Allow', allow] : []),
      ...common,
    ];
    map.set(status, { headers, body });
  }
  return map;
}
