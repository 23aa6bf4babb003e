// What the dashboard's header says: the backend in use and why, and what the kernel offers.
import * as os from 'node:os';
import { probe, type ProbeResult } from '@zcsend/core';
import type { ZcSendApi } from '@zcsend/fastify';

export interface DemoInfo {
  backend: 'io_uring' | 'copy';
  /** One sentence: why this backend, and what that means for the bytes on this page. */
  why: string;
  fallbackReason: string | null;
  adaptive: boolean;
  /** Bodies below this go through Fastify's own write. */
  threshold: number;
  /** Ring setup flags, or null on the copy backend. */
  ring: string | null;
  probe: ProbeResult;
  node: string;
  platform: string;
  pid: number;
}

function kib(bytes: number): string {
  return bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} bytes`;
}

export function describeBackend(api: ZcSendApi, adaptive: boolean): string {
  if (api.backend === 'copy') {
    return `Copy backend: ${api.fallbackReason ?? 'io_uring unavailable'}. Bodies go out through ordinary socket writes (same bytes on the wire).`;
  }
  if (adaptive) {
    return (
      `io_uring is in use; adaptive mode is on, so loopback peers (where the kernel copies anyway) get plain ring sends ` +
      `instead of SEND_ZC and show up as "loopback" fallbacks.`
    );
  }
  return (
    `io_uring zero-copy: bodies of ${kib(api.threshold)} or more go out with IORING_OP_SEND_ZC, loopback included ` +
    `(adaptive mode off, so the zero-copy machinery really runs here).`
  );
}

export function demoInfo(api: ZcSendApi, adaptive: boolean): DemoInfo {
  return {
    backend: api.backend,
    why: describeBackend(api, adaptive),
    fallbackReason: api.fallbackReason,
    adaptive,
    threshold: api.threshold,
    ring: api.sender.ringDescription,
    probe: probe(),
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    pid: process.pid,
  };
}
