import type * as net from 'node:net';
import { constants as osConstants } from 'node:os';
import { currentFd, libuvIdle } from '../sockets.js';

const { EINTR } = osConstants.errno;
/** The kernel moves at most this much per sendfile(2) call (MAX_RW_COUNT). */
const MAX_SENDFILE_COUNT = 0x7ffff000;

/** The two syscalls, as the native binding has them: bytes sent or -errno. */
export interface HeadAndFileSyscalls {
  /** send(2) of data[offset, offset + length) with MSG_MORE | MSG_DONTWAIT. */
  sendMore(fd: number, data: Uint8Array, offset: number, length: number): number;
  sendfile(outFd: number, inFd: number, offset: number, count: number): number;
}

/** How many bytes of the head and of the body the socket took. */
export interface SentNow {
  head: number;
  body: number;
}

/**
 * Writes a response head and bytes [start, end) of an open file on the socket in one synchronous
 * step, as far as the socket takes them without waiting: send(MSG_MORE) for the head, so that it
 * waits in the socket and leaves in the same segments as the first body bytes, then sendfile(2),
 * so no body byte is copied in this process. What the socket did not take (it was full, or
 * failed) the caller writes the usual way; a failure then surfaces there, as Node reports it.
 *
 * null (nothing written) when the kernel may not write to this socket right now: libuv still
 * holds bytes for it (they would be overtaken), it is TLS, or it is closed. fd safety: the fd is
 * read and used within this synchronous step (DESIGN.md "Sockets owned by libuv").
 *
 * Meant for bodies small enough to go in one event-loop turn (the caller bounds `end - start`),
 * whose pages are in the page cache (a miss would block the event loop on the disk).
 */
export function sendHeadAndFileNow(sys: HeadAndFileSyscalls, socket: net.Socket, head: Uint8Array, fileFd: number, start: number, end: number): SentNow | null {
  if ((socket as { encrypted?: boolean }).encrypted || !socket.writable || !libuvIdle(socket)) return null;
  const fd = currentFd(socket);
  if (fd < 0) return null;
  let headSent = 0;
  while (headSent < head.length) {
    const res = sys.sendMore(fd, head, headSent, head.length - headSent);
    if (res > 0) headSent += res;
    else if (res !== -EINTR) break;
  }
  let offset = start;
  if (headSent === head.length) {
    while (offset < end) {
      const res = sys.sendfile(fd, fileFd, offset, Math.min(end - offset, MAX_SENDFILE_COUNT));
      if (res > 0) offset += res;
      // -EAGAIN (full), 0 (the file shrank) or an error: the caller's write takes it from here.
      else if (res !== -EINTR) break;
    }
  }
  return { head: headSent, body: offset - start };
}
