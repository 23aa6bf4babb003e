// The demo as a newcomer runs it: `node dist/main.js` on 127.0.0.1, real HTTP clients, every body
// compared by sha256 with an independent recomputation of the generator.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_BUFFER_SIZES, apiBufferBytes } from '../src/api-buffers.js';
import { deterministicBytes, SAMPLE_SPECS } from '../src/samples.js';
import { EXPECTED_BACKEND, fetchSha256, runDemoToExit, sha256, startDemo, waitFor, type RunningDemo } from './helpers.js';

const expectedFileSha = new Map(SAMPLE_SPECS.map((s) => [s.name, sha256(deterministicBytes(`file:${s.name}`, s.bytes))]));

describe('demo server', () => {
  let demo: RunningDemo;

  beforeAll(async () => {
    demo = await startDemo();
  });
  afterAll(async () => {
    await demo?.stop('SIGKILL');
  });

  it('prints its URL and backend, and the page names the backend the server reports', async () => {
    expect(demo.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(demo.output()).toContain(`backend  ${EXPECTED_BACKEND}`);
    const { body: stats } = await demo.json('/api/stats');
    expect(stats.info.backend).toBe(EXPECTED_BACKEND);
    expect(stats.zcSend.backend).toBe(EXPECTED_BACKEND);
    expect(stats.info.adaptive).toBe(false);

    const res = await fetch(demo.url);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toContain(`data-testid="backend">${EXPECTED_BACKEND}</span>`);
    expect(html).toContain(`<title>zcsend demo · ${EXPECTED_BACKEND}</title>`);
    if (EXPECTED_BACKEND === 'copy') expect(html).toContain(stats.zcSend.fallbackReason);
    else expect(html).toContain('IORING_OP_SEND_ZC');
  });

  it('serves every sample file through serveStatic (/files/) and @fastify/static (/static/)', async () => {
    for (const spec of SAMPLE_SPECS) {
      for (const prefix of ['/files/', '/static/']) {
        const got = await fetchSha256(new URL(prefix + spec.name, demo.url).href);
        expect({ path: prefix + spec.name, status: got.status, bytes: got.bytes }).toEqual({ path: prefix + spec.name, status: 200, bytes: spec.bytes });
        expect(got.sha256).toBe(expectedFileSha.get(spec.name));
      }
    }
    const { body: samples } = await demo.json('/api/samples');
    expect(samples.files.map((f: { sha256: string }) => f.sha256)).toEqual(SAMPLE_SPECS.map((s) => expectedFileSha.get(s.name)));
  });

  it('answers ranges, HEAD, listings and missing files on the /files/ mount', async () => {
    const spec = SAMPLE_SPECS.find((s) => s.name === '1m.bin')!;
    const whole = deterministicBytes(`file:${spec.name}`, spec.bytes);
    const range = await fetchSha256(new URL('/files/1m.bin', demo.url).href, { headers: { range: 'bytes=1000-300999' } });
    expect(range.status).toBe(206);
    expect(range.headers.get('content-range')).toBe(`bytes 1000-300999/${spec.bytes}`);
    expect(range.sha256).toBe(sha256(whole.subarray(1000, 301000)));

    const head = await fetch(new URL('/files/1m.bin', demo.url), { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(spec.bytes));
    expect((await head.arrayBuffer()).byteLength).toBe(0);

    const listing = await fetch(new URL('/files/', demo.url));
    expect(listing.status).toBe(200);
    expect(await listing.text()).toContain('64m.bin');
    const redirect = await fetch(new URL('/files', demo.url), { redirect: 'manual' });
    expect(redirect.status).toBe(301);
    expect(redirect.headers.get('location')).toBe('/files/');
    expect((await fetch(new URL('/files/nope.bin', demo.url))).status).toBe(404);
    expect((await fetch(new URL('/files/..%2fmanifest.json', demo.url))).status).toBeGreaterThanOrEqual(400);
  });

  it('returns the large cached API Buffers intact, and 404 for unknown names', async () => {
    for (const [name, bytes] of Object.entries(API_BUFFER_SIZES)) {
      const expected = sha256(apiBufferBytes(name, bytes));
      for (let i = 0; i < 2; i++) {
        const got = await fetchSha256(new URL(`/api/blob/${name}`, demo.url).href);
        expect({ name, status: got.status, bytes: got.bytes, sha256: got.sha256 }).toEqual({ name, status: 200, bytes, sha256: expected });
        expect(got.headers.get('x-content-sha256')).toBe(expected);
      }
    }
    const missing = await demo.json('/api/blob/huge');
    expect(missing.status).toBe(404);
    expect(missing.body.code).toBe('NOT_FOUND');
  });

  it('serves its chart library and assets locally: no external URL on the page', async () => {
    const html = await (await fetch(demo.url)).text();
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    const require = createRequire(import.meta.url);
    const uplotFile = path.join(path.dirname(require.resolve('uplot/package.json')), 'dist', 'uPlot.iife.min.js');
    const res = await fetch(new URL('/assets/uPlot.iife.min.js', demo.url));
    expect(res.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(Buffer.from(await res.arrayBuffer()).equals(fs.readFileSync(uplotFile))).toBe(true);
    for (const asset of ['dashboard.js', 'dashboard.css', 'uPlot.min.css', 'favicon.svg']) {
      expect((await fetch(new URL(`/assets/${asset}`, demo.url))).status).toBe(200);
    }
    expect((await fetch(new URL('/assets/none.js', demo.url))).status).toBe(404);
  });

  it('streams a hello and then one sample per second over server-sent events', async () => {
    const controller = new AbortController();
    const res = await fetch(new URL('/api/events', demo.url), { signal: controller.signal });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const events: Array<{ event: string; data: any }> = [];
    while (events.filter((e) => e.event === 'sample').length < 2) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = text.indexOf('\n\n')) >= 0) {
        const block = text.slice(0, end);
        text = text.slice(end + 2);
        const event = /^event: (.+)$/m.exec(block)?.[1];
        const data = /^data: (.+)$/m.exec(block)?.[1];
        if (event && data) events.push({ event, data: JSON.parse(data) });
      }
    }
    controller.abort();
    expect(events[0]?.event).toBe('hello');
    expect(events[0]?.data.info.backend).toBe(EXPECTED_BACKEND);
    const sample = events.find((e) => e.event === 'sample')!.data;
    expect(Object.keys(sample.rates)).toEqual(
      expect.arrayContaining(['sentMBps', 'zeroCopyMBps', 'copiedMBps', 'plainMBps', 'fallbacks', 'httpMBps']),
    );
    expect(Object.keys(sample.peaks).sort()).toEqual(['inFlightOps', 'pendingNotifications', 'pinnedBytes']);
    expect(sample.totals.bytesSent).toBeGreaterThanOrEqual(0);
    expect(sample.load.state).toBeDefined();
  });

  it('runs a bounded load on loopback with every body verified, and the counters show it', async () => {
    const before = (await demo.json('/api/stats')).body;
    expect((await demo.json('/api/load', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"seconds":0}' })).body.code).toBe(
      'ZCSEND_DEMO_ERR_LOAD_OPTION',
    );
    const started = await demo.json('/api/load', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"seconds":2,"connections":4}' });
    expect(started.status).toBe(202);
    expect(started.body.state).toBe('running');
    const busy = await demo.json('/api/load', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(busy.status).toBe(409);
    expect(busy.body.code).toBe('ZCSEND_DEMO_ERR_LOAD_BUSY');

    // Polled back to back: the first status that is not 'running' must already accept a new run.
    const done = await waitFor(async () => (await demo.json('/api/load')).body, (s) => s.state !== 'running', 30_000, 'the load run to end', 0);
    const next = await demo.json('/api/load', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"seconds":5,"requests":1}' });
    expect(next.status).toBe(202);
    expect(next.body.run).toBe(done.run + 1);
    const second = await waitFor(async () => (await demo.json('/api/load')).body, (s) => s.state !== 'running', 30_000, 'the second run to end');
    expect(second).toMatchObject({ state: 'finished', requests: 1, verified: 1 });
    expect(done.state).toBe('finished');
    expect(done.requests).toBeGreaterThan(0);
    expect(done.verified).toBe(done.requests);
    expect(done.mismatches).toBe(0);
    expect(done.errors).toBe(0);

    const after = (await demo.json('/api/stats')).body;
    const sender = after.zcSend.sender;
    expect(after.sent.total).toBeGreaterThan(before.sent.total);
    expect(after.sent.total).toBe(sender.bytesSent + after.sent.spliced);
    expect(after.http.bytes).toBeGreaterThanOrEqual(before.http.bytes + done.bytes);
    expect(sender.violations).toBe(0);
    if (EXPECTED_BACKEND === 'io_uring') {
      expect(sender.zcOpsSubmitted).toBeGreaterThan(0);
      // On loopback every notification reports ZC_COPIED; they may still be arriving.
      const settled = await waitFor(
        async () => (await demo.json('/api/stats')).body.zcSend.sender,
        (s) => s.pendingNotifications === 0,
        20_000,
        'every notification',
      );
      expect(settled.bytesCopied + settled.bytesZeroCopy).toBeGreaterThan(0);
      expect(settled.pinnedBytes).toBe(0);
    } else {
      expect(sender.zcOpsSubmitted).toBe(0);
      expect(sender.bytesPlain).toBe(sender.bytesSent);
      expect(sender.fallbacks.disabled ?? 0).toBeGreaterThan(0);
    }
  });

  it('stops a running load on DELETE /api/load', async () => {
    const started = await demo.json('/api/load', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"seconds":30}' });
    expect(started.status).toBe(202);
    await waitFor(async () => (await demo.json('/api/load')).body, (s) => s.requests > 0, 20_000, 'a first response');
    const stopped = await demo.json('/api/load', { method: 'DELETE' });
    expect(stopped.body.state).toBe('stopped');
    expect(stopped.body.mismatches).toBe(0);
    expect(stopped.body.finishedAt - stopped.body.startedAt).toBeLessThan(30_000);
  });
});

describe('demo process', () => {
  it('shuts down gracefully on Ctrl-C (SIGINT) during a load with a dashboard stream open, exit code 0', async () => {
    const demo = await startDemo();
    try {
      const events = await fetch(new URL('/api/events', demo.url));
      expect(events.status).toBe(200);
      const started = await demo.json('/api/load', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"seconds":20}' });
      expect(started.status).toBe(202);
      await waitFor(async () => (await demo.json('/api/load')).body, (s) => s.requests > 0, 20_000, 'a first response');
      expect(await demo.stop('SIGINT')).toBe(0);
      expect(demo.output()).toContain('zcsend demo: stopped');
    } finally {
      await demo.stop('SIGKILL');
    }
  });

  it('exits 0 on SIGTERM too, and honours ZCSEND_ADAPTIVE=1', async () => {
    const demo = await startDemo({ ZCSEND_ADAPTIVE: '1' });
    try {
      const { body: stats } = await demo.json('/api/stats');
      expect(stats.info.adaptive).toBe(true);
      expect(stats.info.backend).toBe(EXPECTED_BACKEND);
      if (EXPECTED_BACKEND === 'io_uring') {
        // Adaptive: loopback byte bodies stay with Fastify (the kernel would copy them anyway).
        const got = await fetchSha256(new URL('/api/blob/1m', demo.url).href);
        expect(got.sha256).toBe(sha256(apiBufferBytes('1m', API_BUFFER_SIZES['1m']!)));
        expect((await demo.json('/api/stats')).body.zcSend.replies.bypassed.loopback).toBeGreaterThan(0);
      }
      expect(await demo.stop('SIGTERM')).toBe(0);
    } finally {
      await demo.stop('SIGKILL');
    }
  });

  it.each([
    [{ PORT: 'abc' }, /PORT must be an integer/],
    [{ ZCSEND_ADAPTIVE: 'maybe' }, /ZCSEND_ADAPTIVE/],
  ])('refuses bad settings %j with exit code 2 and one line', async (env, message) => {
    const { code, output } = await runDemoToExit(env);
    expect(code).toBe(2);
    expect(output).toMatch(message);
    expect(output.trim().split('\n')).toHaveLength(1);
  });

  it('reports a port already in use and exits 1', async () => {
    const first = await startDemo();
    try {
      const port = new URL(first.url).port;
      const { code, output } = await runDemoToExit({ PORT: port });
      expect(code).toBe(1);
      expect(output).toMatch(/could not start: .*EADDRINUSE/);
    } finally {
      await first.stop('SIGKILL');
    }
  });
});
