import { describe, expect, it } from 'vitest';

import { binding, openFdCount, skipUring } from './helpers.js';

describe.skipIf(!binding)('probe()', () => {
  it('has the documented shape', () => {
    const p = binding!.probe();
    expect(typeof p.available).toBe('boolean');
    expect(typeof p.kernel).toBe('string');
    expect(p.kernel.length).toBeGreaterThan(0);
    if (p.available) {
      expect(p.reason).toBeNull();
      expect(p.errno).toBeNull();
    } else {
      expect(typeof p.reason).toBe('string');
    }
    expect(Object.keys(p.features).sort()).toEqual(
      ['deferTaskrun', 'fixedBuffers', 'reportUsage', 'send', 'sendZc', 'sendmsgZc', 'singleIssuer', 'splice'],
    );
    for (const value of Object.values(p.features)) expect(typeof value).toBe('boolean');
  });

  it('leaves no file descriptor open', () => {
    binding!.probe();
    const before = openFdCount();
    for (let i = 0; i < 20; i++) binding!.probe();
    expect(openFdCount()).toBe(before);
  });
});

describe.skipIf(skipUring)('probe() on a kernel with io_uring', () => {
  it('reports SEND_ZC, REPORT_USAGE and fixed buffers available', () => {
    const p = binding!.probe();
    const [major, minor] = p.kernel.split('.').map(Number);
    const atLeast = (a: number, b: number) => major > a || (major === a && minor >= b);
    expect(p.reason).toBeNull();
    expect(p.available).toBe(true);
    expect(p.features.sendZc).toBe(true);
    expect(p.features.sendmsgZc).toBe(true);
    expect(p.features.reportUsage).toBe(atLeast(6, 2));
    expect(p.features.fixedBuffers).toBe(true);
    expect(p.features.send).toBe(true);
    expect(p.features.splice).toBe(true);
    expect(p.features.singleIssuer).toBe(true);
    expect(p.features.deferTaskrun).toBe(atLeast(6, 1));
    expect(p.kernel).toMatch(/^\d+\.\d+/);
  });
});
