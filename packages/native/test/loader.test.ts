import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { load } from '../index.js';
import { requireUring, unavailableReason } from './helpers.js';

const indexUrl = new URL('../index.js', import.meta.url).href;
const packageDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** load() is cached per process: run it in a fresh node with the given env. */
function loadInChild(env: Record<string, string>): { binding: boolean; reason: string | null } {
  const script = `import { load } from ${JSON.stringify(indexUrl)};
    const r = load();
    process.stdout.write(JSON.stringify({ binding: r.binding !== null, reason: r.reason }));`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  expect(child.status, child.stderr).toBe(0);
  return JSON.parse(child.stdout);
}

describe('load()', () => {
  it('returns a binding or a reason, never both, and caches the result', () => {
    const first = load();
    expect(first).toBe(load());
    if (first.binding) {
      expect(first.reason).toBeNull();
      expect(typeof first.binding.probe).toBe('function');
      expect(typeof first.binding.Ring).toBe('function');
    } else {
      expect(typeof first.reason).toBe('string');
      expect(first.reason.length).toBeGreaterThan(0);
    }
  });

  it.skipIf(!requireUring)('is required to succeed when ZCSEND_REQUIRE_URING=1', () => {
    expect(unavailableReason).toBeNull();
  });

  it('reports a missing addon (ZCSEND_NATIVE_PATH) instead of throwing', () => {
    const result = loadInChild({ ZCSEND_NATIVE_PATH: path.join(packageDir, 'build', 'no-such-addon.node') });
    expect(result.binding).toBe(false);
    expect(result.reason).toMatch(/not found at .*no-such-addon\.node/);
  });

  it('reports a file that is not an addon with the dlopen error', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zcsend-loader-'));
    try {
      const bogus = path.join(dir, 'bogus.node');
      fs.writeFileSync(bogus, 'not an ELF object');
      const result = loadInChild({ ZCSEND_NATIVE_PATH: bogus });
      expect(result.binding).toBe(false);
      expect(result.reason).toMatch(/failed to load .*bogus\.node.*: .*(invalid ELF header|file too short)/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects a module that is not the zcsend addon', () => {
    const result = loadInChild({ ZCSEND_NATIVE_PATH: path.join(packageDir, 'package.json') });
    expect(result.binding).toBe(false);
    expect(result.reason).toMatch(/does not export probe\/Ring\/constants/);
  });
});

describe.skipIf(!load().binding)('constants', () => {
  it('exposes the kernel ABI values and the errno map', () => {
    const c = load().binding!.constants;
    expect(c.IORING_CQE_F_MORE).toBe(2);
    expect(c.IORING_CQE_F_NOTIF).toBe(8);
    expect(c.IORING_SEND_ZC_REPORT_USAGE).toBe(8);
    expect(c.IORING_NOTIF_USAGE_ZC_COPIED).toBe(0x80000000);
    expect(c.IORING_RECVSEND_POLL_FIRST).toBe(1);
    expect(c.IOSQE_FIXED_FILE).toBe(1);
    expect(c.IOSQE_IO_LINK).toBe(4);
    expect(c.SPLICE_F_FD_IN_FIXED).toBe(0x80000000);
    expect(c.SPLICE_F_MOVE).toBe(1);
    expect(c.SPLICE_F_NONBLOCK).toBe(2);
    expect(c.MSG_WAITALL).toBe(0x100);
    expect(c.MSG_NOSIGNAL).toBe(0x4000);
    expect(c.MSG_DONTWAIT).toBe(0x40);
    expect(c.CANCEL_TAG_HI).toBe(0x40000000);
    const names = ['EPERM', 'ENOSYS', 'EINVAL', 'EOPNOTSUPP', 'ECANCELED', 'ECONNRESET', 'EPIPE', 'ENOMEM', 'EBADF',
      'EBADFD', 'EAGAIN', 'ENOENT', 'EALREADY', 'EFAULT', 'EBUSY', 'EMSGSIZE', 'ENOTCONN', 'ENOTSOCK', 'ETIMEDOUT',
      'EINTR', 'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EDESTADDRREQ', 'EEXIST', 'ENOBUFS'];
    for (const name of names) expect(c.errno[name], name).toBeGreaterThan(0);
    expect(c.errno.ECANCELED).toBe(125);
    expect(c.errno.EBADFD).toBe(77);
    expect(Object.isFrozen(c)).toBe(true);
  });
});
