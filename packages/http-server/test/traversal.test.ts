// Hostile request targets, sent byte for byte over raw sockets (clients would normalize them):
// every one refused with 400/403/404, nothing from outside the root or any path in the body.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODE, OUTSIDE_SECRET, makeTree, rawExchange, rawGet, startServer, type Running, type Tree } from './helpers.js';

const OUT = 'outside/secret.txt';

/** Request targets that must never reach a file outside the root, a dotfile, or crash anything. */
const HOSTILE: string[] = [
  `/../${OUT}`,
  `/../../${OUT}`,
  `/..%2f${OUT}`,
  `/..%2F${OUT.replace('/', '%2F')}`,
  `/%2e%2e/${OUT}`,
  `/%2E%2E/${OUT}`,
  `/%2e%2e%2f${OUT.replace('/', '%2f')}`,
  `/.%2e/${OUT}`,
  `/%2e./${OUT}`,
  `/sub/../../${OUT}`,
  `/sub/%2e%2e/%2e%2e/${OUT}`,
  `/sub%2f..%2f..%2f${OUT}`,
  `/sub/..%2f..%2f${OUT}`,
  `/./../${OUT}`,
  `/sub/./../../${OUT}`,
  `/%2e%2e%5c${OUT}`,
  `/..%5c${OUT.replace('/', '%5c')}`,
  `/%5c..%5c${OUT.replace('/', '%5c')}`,
  `/..\\${OUT.replace('/', '\\')}`,
  `/sub\\..\\..\\${OUT.replace('/', '\\')}`,
  `/%252e%252e/${OUT}`,
  `/..%252f..%252f${OUT}`,
  `/%c0%ae%c0%ae/${OUT}`,
  `/%c0%2e%c0%2e/${OUT}`,
  `/%e0%80%ae%e0%80%ae/${OUT}`,
  `/%c1%9c..%c1%9c${OUT}`,
  `/%uff0e%uff0e/${OUT}`,
  `/%ef%bc%8e%ef%bc%8e/${OUT}`,
  `/..;/${OUT}`,
  `/....//....//${OUT}`,
  '/../../../../../../../../etc/passwd',
  '/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
  '/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd',
  '/.%2e/.%2e/.%2e/etc/passwd',
  '/etc/passwd',
  '/etc-link/passwd',
  '/etc-link/../etc-link/passwd',
  '/link-outside.txt',
  '/link-outside.txt%00',
  '/link-outside.txt%00.html',
  '/dir-link-outside/secret.txt',
  '/dir-link-outside/',
  '/dir-link-outside',
  '/dir-link-outside%2fsecret.txt',
  '/small.txt%00.html',
  '/%00',
  '/index.html%00',
  '/..%00/',
  '/sub%00/../..',
  '/%0d%0aSet-Cookie:%20x=1',
  '/%0a',
  '/%7f',
  '/.secret',
  '/%2esecret',
  '/%2Esecret',
  '/.hidden/inner.txt',
  '/.hidden%2finner.txt',
  '/sub/.env',
  '/sub/%2eenv',
  '/.git/config',
  '/nested/../.secret',
  `/${'a'.repeat(5000)}`,
  `/${'%61'.repeat(4000)}`,
  `/${'b'.repeat(300)}`,
  `/sub/${'c'.repeat(256)}.txt`,
  `/${'x/'.repeat(2100)}`,
  '/%ZZ',
  '/%',
  '/%2',
  '/%e2%82',
  'file:///etc/passwd',
  `http://evil.test/../${OUT}`,
  '*',
  'secret.txt',
];

let tree: Tree;
let server: Running;

beforeAll(async () => {
  tree = makeTree();
  server = await startServer({ root: tree.root });
});

afterAll(async () => {
  try {
    await server?.close();
  } finally {
    tree?.cleanup();
  }
});

describe(`path traversal and hostile targets (${MODE})`, () => {
  it(`has at least 50 hostile targets`, () => {
    expect(HOSTILE.length).toBeGreaterThanOrEqual(50);
  });

  it('refuses every hostile target with 400, 403 or 404 and leaks nothing', async () => {
    const refused: Array<[string, number]> = [];
    for (const target of HOSTILE) {
      const res = await rawGet(server.port, target);
      refused.push([target.slice(0, 60), res.status]);
      const body = res.body.toString('latin1');
      expect([400, 403, 404], `${target.slice(0, 80)} -> ${res.status}`).toContain(res.status);
      expect(body).not.toContain(OUTSIDE_SECRET);
      expect(body).not.toContain('root:');
      expect(body).not.toContain('secret');
      expect(body).not.toContain(tree.dir);
      expect(res.headers['set-cookie']).toBeUndefined();
    }
    // The server is still up and serving.
    const ok = await rawGet(server.port, '/small.txt');
    expect(ok.status).toBe(200);
    expect(refused.length).toBe(HOSTILE.length);
  });

  it('refuses hostile targets on one keep-alive connection without breaking it', async () => {
    const targets = HOSTILE.filter((t) => t.startsWith('/') && !t.includes('\\') && t.length < 1000);
    const text = targets.map((t) => `GET ${t} HTTP/1.1\r\nHost: t\r\n\r\n`).join('') + 'GET /small.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n';
    const { responses, socket } = await rawExchange(server.port, text, targets.length + 1);
    socket.destroy();
    expect(responses.length).toBe(targets.length + 1);
    for (const res of responses.slice(0, -1)) {
      expect([400, 403, 404]).toContain(res.status);
      expect(res.body.toString()).not.toContain(OUTSIDE_SECRET);
    }
    expect(responses.at(-1)!.status).toBe(200);
    expect(responses.at(-1)!.body.equals(tree.files['small.txt']!)).toBe(true);
  });

  it('still serves legitimate names that merely look odd', async () => {
    tree.write('odd/foo..bar', 'dots in a name\n');
    tree.write('odd/a%2fb.txt', 'percent in a name\n');
    tree.write('odd/sp ace.txt', 'space\n');
    expect((await rawGet(server.port, '/odd/foo..bar')).body.toString()).toBe('dots in a name\n');
    expect((await rawGet(server.port, '/odd/a%252fb.txt')).body.toString()).toBe('percent in a name\n');
    expect((await rawGet(server.port, '/odd/sp%20ace.txt')).body.toString()).toBe('space\n');
    expect((await rawGet(server.port, '/odd//./sp%20ace.txt')).status).toBe(200);
    expect((await rawGet(server.port, '/nested/h%C3%A9llo%20w%C3%B6rld.txt')).body.toString()).toBe('unicode\n');
  });
});
