// The demo's pieces on their own: sample generation, configuration, load options, the sampler.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Sender, type SenderStats } from '@zcsend/core';
import { escapeHtml, renderTemplate } from '../src/assets.js';
import { configFromEnv } from '../src/config.js';
import { DemoError } from '../src/errors.js';
import { LoadController, loopbackOrigin, type LoadStatus } from '../src/load.js';
import { MetricsSampler, type Reading } from '../src/metrics.js';
import { deterministicBytes, deterministicStream, ensureSamples, SAMPLE_SPECS, type SampleSpec } from '../src/samples.js';
import { sha256 } from './helpers.js';

/** Zeroed counters, from the public API (a copy-backend Sender that never sends). */
function zeroStats(): SenderStats {
  const sender = new Sender({ backend: 'copy' });
  const stats = sender.stats();
  void sender.close();
  return stats;
}

const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zcsend-demo-unit-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe('sample files', () => {
  const specs: SampleSpec[] = [
    { name: 'a.bin', bytes: 4096 },
    { name: 'b.bin', bytes: 3 * 1024 * 1024 + 17 },
  ];

  it('the default set spans 4 KiB to 64 MiB', () => {
    const sizes = SAMPLE_SPECS.map((s) => s.bytes);
    expect(Math.min(...sizes)).toBe(4096);
    expect(Math.max(...sizes)).toBe(64 << 20);
  });

  it('writes each file with its size and the generator content, and records the sha256', async () => {
    const dir = tempDir();
    const set = await ensureSamples(dir, specs);
    expect(set.generated).toBe(true);
    for (const spec of specs) {
      const data = fs.readFileSync(path.join(dir, spec.name));
      expect(data.length).toBe(spec.bytes);
      const expected = deterministicBytes(`file:${spec.name}`, spec.bytes);
      expect(data.equals(expected)).toBe(true);
      expect(set.files.find((f) => f.name === spec.name)?.sha256).toBe(sha256(expected));
    }
    // No temporary files left behind.
    expect(fs.readdirSync(dir).sort()).toEqual(['a.bin', 'b.bin', 'manifest.json']);
  });

  it('reuses an intact set and rewrites a damaged one', async () => {
    const dir = tempDir();
    const first = await ensureSamples(dir, specs);
    const second = await ensureSamples(dir, specs);
    expect(second.generated).toBe(false);
    expect(second.files).toEqual(first.files);

    fs.truncateSync(path.join(dir, 'b.bin'), 100);
    const repaired = await ensureSamples(dir, specs);
    expect(repaired.generated).toBe(true);
    expect(fs.statSync(path.join(dir, 'b.bin')).size).toBe(specs[1]!.bytes);
    expect(sha256(fs.readFileSync(path.join(dir, 'b.bin')))).toBe(first.files[1]!.sha256);

    fs.writeFileSync(path.join(dir, 'manifest.json'), '{ not json');
    expect((await ensureSamples(dir, specs)).generated).toBe(true);
    fs.rmSync(path.join(dir, 'a.bin'));
    expect((await ensureSamples(dir, specs)).generated).toBe(true);
  });

  it('the generator is a stream: chunking does not change the bytes; seeds differ', () => {
    const next = deterministicStream('x');
    const chunked = Buffer.concat([next(10), next(1000), next(5)]);
    expect(chunked.equals(deterministicBytes('x', 1015))).toBe(true);
    expect(deterministicBytes('y', 64).equals(deterministicBytes('x', 64))).toBe(false);
  });
});

describe('configuration', () => {
  it('defaults: 127.0.0.1:3000, adaptive off, cache folder', () => {
    expect(configFromEnv({})).toEqual({ port: 3000, host: '127.0.0.1', adaptive: false, sampleDir: null, logLevel: 'warn' });
  });

  it('reads PORT, HOST, ZCSEND_ADAPTIVE, ZCSEND_DEMO_DATA, LOG_LEVEL', () => {
    const config = configFromEnv({ PORT: '0', HOST: '::1', ZCSEND_ADAPTIVE: '1', ZCSEND_DEMO_DATA: 'rel/dir', LOG_LEVEL: 'info' });
    expect(config).toEqual({ port: 0, host: '::1', adaptive: true, sampleDir: path.resolve('rel/dir'), logLevel: 'info' });
    expect(configFromEnv({ ZCSEND_ADAPTIVE: 'false' }).adaptive).toBe(false);
  });

  it.each([
    [{ PORT: 'abc' }, /PORT/],
    [{ PORT: '65536' }, /PORT/],
    [{ PORT: '-1' }, /PORT/],
    [{ ZCSEND_ADAPTIVE: 'maybe' }, /ZCSEND_ADAPTIVE/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
    [{ HOST: 'a b' }, /HOST/],
  ])('rejects %j with ZCSEND_DEMO_ERR_CONFIG', (env, message) => {
    let caught: unknown;
    try {
      configFromEnv(env);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(DemoError);
    expect((caught as DemoError).code).toBe('ZCSEND_DEMO_ERR_CONFIG');
    expect((caught as DemoError).message).toMatch(message);
  });
});

describe('load options and loopback', () => {
  it('targets loopback only', () => {
    expect(loopbackOrigin({ address: '127.0.0.1', port: 80, family: 'IPv4' })).toBe('http://127.0.0.1:80');
    expect(loopbackOrigin({ address: '0.0.0.0', port: 81, family: 'IPv4' })).toBe('http://127.0.0.1:81');
    expect(loopbackOrigin({ address: '::', port: 82, family: 'IPv6' })).toBe('http://[::1]:82');
    expect(loopbackOrigin({ address: '::1', port: 83, family: 'IPv6' })).toBe('http://[::1]:83');
    const outside = loopbackOrigin({ address: '192.0.2.7', port: 84, family: 'IPv4' });
    expect(outside).toBeInstanceOf(DemoError);
    expect((outside as DemoError).code).toBe('ZCSEND_DEMO_ERR_NOT_LOOPBACK');
  });

  it.each([{ seconds: 0 }, { seconds: 61 }, { seconds: 1.5 }, { seconds: 'x' }, { requests: 0 }, { connections: 65 }, { connections: [] }])(
    'refuses %j before starting anything',
    (request) => {
      const load = new LoadController(() => 'http://127.0.0.1:1', []);
      expect(() => load.start(request)).toThrow(expect.objectContaining({ code: 'ZCSEND_DEMO_ERR_LOAD_OPTION' }));
      expect(load.running).toBe(false);
    },
  );

  it('refuses to run against a server that is not on loopback, and says why in its status', () => {
    const load = new LoadController(() => loopbackOrigin({ address: '192.0.2.7', port: 84, family: 'IPv4' }), []);
    expect(load.status().unavailable).toMatch(/loopback only/);
    expect(() => load.start({ seconds: 1 })).toThrow(expect.objectContaining({ code: 'ZCSEND_DEMO_ERR_NOT_LOOPBACK' }));
  });
});

describe('metrics sampler', () => {
  const load = { state: 'idle' } as LoadStatus;

  it('turns counters into per-second rates and reports gauge peaks within the interval', () => {
    let now = 1_000_000;
    const sender = zeroStats();
    let spliced = 0;
    let bypassed = 3;
    let fileFallbacks: Record<string, number> = {};
    const reading = (): Reading => ({
      sender: { ...sender, fallbacks: { ...sender.fallbacks } },
      splicedBytes: spliced,
      fileFallbacks: { ...fileFallbacks },
      bypassed: { 'below-threshold': bypassed },
      httpBytes: sender.bytesSent + spliced + 500_000,
      httpResponses: sender.opsSubmitted,
      load,
    });
    const sampler = new MetricsSampler({ read: reading, now: () => now });

    // Two seconds pass: 4 MB sent by SEND_ZC (3 MB reported copied), 1 MB plain, 2 MB spliced,
    // two 'copied' fallbacks, one file-engine 'cache-full', four more bodies left to Fastify.
    spliced = 2_000_000;
    fileFallbacks = { 'cache-full': 1 };
    bypassed = 7;
    sender.bytesSent = 5_000_000;
    sender.bytesCopied = 3_000_000;
    sender.bytesZeroCopy = 1_000_000;
    sender.bytesPlain = 1_000_000;
    sender.notifications = 8;
    sender.opsSubmitted = 10;
    sender.fallbacks = { copied: 2 };
    now += 2000;
    const first = sampler.sample();
    expect(first.rates.sentMBps).toBeCloseTo(3.5);
    expect(first.rates.splicedMBps).toBeCloseTo(1);
    expect(first.rates.httpMBps).toBeCloseTo(3.5);
    expect(first.totals.bytesSent).toBe(7_000_000);
    expect(first.totals.bytesSpliced).toBe(2_000_000);
    expect(first.rates.bypassed).toEqual({ 'below-threshold': 2 });
    expect(first.rates.copiedMBps).toBeCloseTo(1.5);
    expect(first.rates.zeroCopyMBps).toBeCloseTo(0.5);
    expect(first.rates.plainMBps).toBeCloseTo(0.5);
    expect(first.rates.notificationsPerSec).toBeCloseTo(4);
    expect(first.rates.fallbacks).toEqual({ copied: 1, 'file:cache-full': 0.5 });
    expect(first.totals.fallbacks).toEqual({ copied: 2, 'file:cache-full': 1 });
    expect(first.totals.bypassed).toEqual({ 'below-threshold': 7 });

    // A gauge that rose and fell between samples shows as the interval's peak, once.
    sender.inFlightOps = 7;
    sender.pinnedBytes = 7 << 20;
    sender.pendingNotifications = 5;
    (sampler as unknown as { readGauges(s: typeof sender): void }).readGauges(sender);
    sender.inFlightOps = 0;
    sender.pinnedBytes = 0;
    sender.pendingNotifications = 0;
    now += 1000;
    const second = sampler.sample();
    expect(second.peaks).toEqual({ inFlightOps: 7, pinnedBytes: 7 << 20, pendingNotifications: 5 });
    expect(second.rates.sentMBps).toBe(0);
    now += 1000;
    expect(sampler.sample().peaks).toEqual({ inFlightOps: 0, pinnedBytes: 0, pendingNotifications: 0 });
  });

  it('emits one sample per interval to subscribers and keeps a bounded history', async () => {
    const sampler = new MetricsSampler({ read: () => ({ sender: zeroStats(), splicedBytes: 0, fileFallbacks: {}, bypassed: {}, httpBytes: 0, httpResponses: 0, load }), intervalMs: 20, gaugeMs: 5, history: 3 });
    const seen: number[] = [];
    const unsubscribe = sampler.subscribe((s) => seen.push(s.t));
    sampler.start();
    await new Promise((r) => setTimeout(r, 200));
    sampler.stop();
    unsubscribe();
    expect(seen.length).toBeGreaterThanOrEqual(3);
    expect(sampler.history().length).toBe(3);
    expect(sampler.history().map((s) => s.t)).toEqual(seen.slice(-3));
  });
});

describe('dashboard template', () => {
  it('escapes values and refuses unknown placeholders', () => {
    expect(renderTemplate('<b>{{backend}}</b>', { backend: '<io_uring & "copy">' })).toBe('<b>&lt;io_uring &amp; &quot;copy&quot;&gt;</b>');
    expect(() => renderTemplate('{{missing}}', {})).toThrow(/missing/);
    expect(escapeHtml("'")).toBe('&#39;');
  });
});
