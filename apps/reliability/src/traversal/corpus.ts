// Request targets that try to leave the served root (or reach what the root hides), against the
// tree of lib/fixtures.ts hostileTree(): ../secret.txt and ../outside/secret.txt hold the marker,
// link-out.txt / dir-out / etc / sub/up.txt are symlinks pointing outside, .env / .git are dotfiles.
// Every one must be refused (400, 403 or 404) without a byte of what it aims at.

/** Ways to write the parent-directory segment. */
export const DOT_DOT = [
  '..',
  '%2e%2e',
  '%2E%2E',
  '.%2e',
  '%2e.',
  '%252e%252e', // double-encoded
  '%c0%ae%c0%ae', // overlong UTF-8
  '%e0%80%ae%e0%80%ae', // overlong UTF-8, 3 bytes
  '%uff0e%uff0e', // IIS-style %u
  '%ef%bc%8e%ef%bc%8e', // fullwidth full stops
  '..%00',
  '..;',
] as const;

/** Ways to write the separator after it. */
export const SLASH = [
  '/',
  '%2f',
  '%2F',
  '\\',
  '%5c',
  '%5C',
  '%252f', // double-encoded
  '%c0%af', // overlong UTF-8
  '%e0%80%af',
  '//',
] as const;

const HAND_WRITTEN = [
  // symlinks that leave the root
  '/link-out.txt',
  '/link-out.txt%00',
  '/link-out.txt%00.html',
  '/link-out.txt/',
  '/%6cink-out.txt',
  '/dir-out/secret.txt',
  '/dir-out/',
  '/dir-out',
  '/dir-out%2fsecret.txt',
  '/dir-out/./secret.txt',
  '/etc/passwd',
  '/etc/hostname',
  '/etc/%70asswd',
  '/etc%2fpasswd',
  '/etc/',
  '/sub/up.txt',
  '/sub/./up.txt',
  '/sub//up.txt',
  // dotfiles and dot-directories
  '/.env',
  '/%2eenv',
  '/%2Eenv',
  '/.env%00',
  '/.git/config',
  '/.git%2fconfig',
  '/%2egit/config',
  '/.git/',
  '/sub/.htpasswd',
  '/sub/%2ehtpasswd',
  '/sub/deeper/../.htpasswd',
  // absolute paths, schemes, authority tricks
  '//etc/passwd',
  '///etc/passwd',
  '/%2fetc%2fpasswd',
  '/%2F%2Fetc/passwd',
  'http://evil.test/../outside/secret.txt',
  'http://127.0.0.1/../../secret.txt',
  'file:///etc/passwd',
  '/file:///etc/passwd',
  '/C:/Windows/win.ini',
  '/C:%5cWindows%5cwin.ini',
  '/\\\\?\\C:\\secret.txt',
  // mixtures and normalisation traps
  '/./../secret.txt',
  '/sub/./../../secret.txt',
  '/sub/deeper/../../../outside/secret.txt',
  '/....//....//outside/secret.txt',
  '/.../.../secret.txt',
  '/..%2f..%2f..%2f..%2fetc%2fpasswd',
  '/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd',
  '/..%252f..%252f..%252fetc%252fpasswd',
  '/%252e%252e%252f%252e%252e%252fsecret.txt',
  '/..%c0%af..%c0%afsecret.txt',
  '/..%u2215secret.txt',
  '/..\u2215secret.txt',
  '/..%e2%88%95secret.txt',
  '/sub%2f..%2f..%2fsecret.txt',
  '/sub/..%2f..%2fsecret.txt',
  '/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
  '/..%00/secret.txt',
  '/%00../secret.txt',
  '/..%0d%0a/secret.txt',
  '/..%09/secret.txt',
  '/.. /secret.txt',
  '/%20../secret.txt',
  '/..%20/secret.txt',
  `/${'../'.repeat(40)}etc/passwd`,
  `/${'%2e%2e/'.repeat(40)}etc/passwd`,
  `/${'a/'.repeat(30)}${'../'.repeat(32)}secret.txt`,
];

/** The corpus: generated encodings of "go up and read the secret" plus hand-written cases. */
export function traversalCorpus(): string[] {
  const out = new Set<string>();
  for (const dots of DOT_DOT) {
    for (const slash of SLASH) out.add(`/${dots}${slash}outside${slash}secret.txt`);
    out.add(`/${dots}/secret.txt`);
    out.add(`/sub/${dots}/${dots}/outside/secret.txt`);
    out.add(`/${`${dots}/`.repeat(8)}etc/passwd`);
  }
  for (const t of HAND_WRITTEN) out.add(t);
  return [...out];
}
