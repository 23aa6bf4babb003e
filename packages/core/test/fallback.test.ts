// The copy backend and the reasons zcsend gives for using it.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Sender, probe } from '../src/index.js';
import { MODE, REQUIRE_URING, randomBytes, receive, sha256, tcpPair } from './helpers.js';

const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));

/** Runs a snippet against the built package in a fresh process (the native loader caches its result). */
function inChild(code: string, env: Record<string, string>): string {
  const cleanEnv = { ...process.env };
  delete cleanEnv.ZCSEND_DISABLE;
  delete cleanEnv.ZCSEND_REQUIRE_URING;
  return execFileSync(process.execPath, ['--input-type=module', '-e', `import * as core from ${JSON.stringify(dist)};\n${code}`], {
    env: { ...cleanEnv, ...env },
    encoding: 'utf8',
    timeout: 30_000,
  }).trim();
}

describe('fallback and its reasons', () => {
  it('probe() describes the machine', () => {
    const p = probe();
    expect(typeof p.available).toBe('boolean');
    expect(p.kernel).toMatch(/\S/);
    if (p.available) expect(p.reason).toBeNull();
    else expect(p.reason).toMatch(/\S/);
    if (REQUIRE_URING) expect(p, p.reason ?? '').toMatchObject({ available: true, features: { sendZc: true } });
  });

  it('says why when the native addon is absent, and sends through the copy backend', () => {
    const out = inChild(
      `const s = new core.Sender(); console.log(JSON.stringify({ backend: s.backend, reason: s.fallbackReason, probe: core.probe().reason }));`,
      { ZCSEND_NATIVE_PATH: '/nonexistent/zcsend_native.node' },
    );
    const result = JSON.parse(out) as { backend: string; reason: string; probe: string };
    expect(result.backend).toBe('copy');
    expect(result.reason).toMatch(/native addon unavailable/);
    expect(result.probe).toMatch(/native addon unavailable/);
  });

  it('turns an unavailable ring into a start-up error when io_uring is required', () => {
    const out = inChild(
      `try { new core.Sender(); console.log('constructed'); } catch (e) { console.log(e.code + ' ' + (e instanceof core.ZcSendError)); }`,
      { ZCSEND_NATIVE_PATH: '/nonexistent/zcsend_native.node', ZCSEND_REQUIRE_URING: '1' },
    );
    expect(out).toBe('ZCSEND_ERR_URING_UNAVAILABLE true');
  });

  it('ZCSEND_DISABLE=1 wins over a request for io_uring', () => {
    const out = inChild(`const s = new core.Sender({ backend: 'io_uring' }); console.log(s.backend + ' ' + s.fallbackReason);`, {
      ZCSEND_DISABLE: '1',
    });
    expect(out).toBe('copy disabled by ZCSEND_DISABLE=1');
  });

  it('copy backend: sends on a socket byte-exact and counts the reason', async () => {
    const sender = new Sender({ backend: 'copy' });
    const { sender: sock, receiver, close } = await tcpPair();
    const data = randomBytes(5 << 20);
    const received = receive(receiver, data.length);
    const report = await sender.send(sock, data).released;
    expect((await received).sha256).toBe(sha256(data));
    expect(report).toMatchObject({ path: 'copy', bytes: data.length, ops: 0 });
    expect(sender.stats().fallbacks.disabled).toBe(1);
    close();
    await sender.close();
  });

  it(`sends to a raw fd (${MODE})`, async () => {
    const sender = new Sender({ adaptive: false });
    const { sender: sock, receiver, close } = await tcpPair();
    const fd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
    const data = randomBytes(3 << 20);
    const received = receive(receiver, data.length);
    const h = sender.send(fd, data);
    expect(await h.sent).toBe(data.length);
    expect((await received).sha256).toBe(sha256(data));
    expect((await h.released).path).toBe(sender.backend === 'io_uring' ? 'io_uring' : 'copy');
    close();
    await sender.close();
  });

  it('sends small bodies through libuv even on io_uring', async () => {
    const sender = new Sender({ adaptive: false, threshold: 64 * 1024 });
    const { sender: sock, receiver, close } = await tcpPair();
    const data = randomBytes(1000);
    const received = receive(receiver, data.length);
    const report = await sender.send(sock, data).released;
    expect((await received).sha256).toBe(sha256(data));
    expect(report.path).toBe('copy');
    expect(report.fallbackReason).toBe(sender.backend === 'io_uring' ? 'below-threshold' : 'disabled');
    close();
    await sender.close();
  });
});
