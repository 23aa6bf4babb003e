// Shared by the fake-ring tests: a Sender on a FakeRing, deterministic bytes, promise probes.
import { Sender } from '../src/index.js';
import { FakeRing } from '../src/testing.js';

type SenderOptions = ConstructorParameters<typeof Sender>[0];
type FakeOptions = ConstructorParameters<typeof FakeRing>[1];

/** A Sender on a fresh FakeRing: `defaults` are the suite's, `options` the test's. */
export function fakeSender(defaults: SenderOptions, options: SenderOptions = {}, fake: FakeOptions = {}) {
  const { factory, ring } = FakeRing.factory(fake);
  const sender = new Sender({ ...defaults, ...options, ring: factory });
  return { sender, ring: ring() };
}

/** n bytes of a pattern that differs per seed. */
export function bytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + seed * 7) & 0xff;
  return b;
}

/** Lets pending promise callbacks run so `track` flags can be read. */
export const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

export function track<T>(p: Promise<T>) {
  const state: { done: boolean; value?: T; error?: unknown } = { done: false };
  p.then(
    (value) => Object.assign(state, { done: true, value }),
    (error) => Object.assign(state, { done: true, error }),
  );
  return state;
}

/** Like `track`, read through getters: whether `p` settled, and with what. */
export function settle<T>(p: Promise<T>): { done: () => boolean; value: () => T | undefined; error: () => unknown } {
  let done = false;
  let value: T | undefined;
  let error: unknown;
  p.then(
    (v) => ((done = true), (value = v)),
    (e: unknown) => ((done = true), (error = e)),
  );
  return { done: () => done, value: () => value, error: () => error };
}
