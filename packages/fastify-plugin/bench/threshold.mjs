// Measures the reply size from which the Sender path can pay off (not a test; see README
// "Threshold"). For each body size: requests/s and server CPU microseconds per request of plain
// Fastify, Fastify + zcSend with default options, and Fastify + zcSend forcing SEND_ZC for every
// body. The server is pinned to CPU 0 and this load generator to CPU 1; 16 keep-alive connections.
//   node bench/threshold.mjs [seconds per run] [rounds]
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';

const seconds = Number(process.argv[2] ?? 3);
const rounds = Number(process.argv[3] ?? 3);
const SIZES = [1024, 4096, 16384, 32768, 65536, 131072, 262144, 1048576];
const VARIANTS = ['plain', 'default', 'forced'];
const CONNECTIONS = 16;
const TICK = 100; // clock ticks per second for /proc/<pid>/stat
const server = fileURLToPath(new URL('./threshold-server.mjs', import.meta.url));
execFileSync('taskset', ['-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });

function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICK;
}

async function start(variant) {
  const child = spawn('taskset', ['-c', '0', process.execPath, server, variant], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve) => child.stdout.once('data', (d) => resolve(Number(String(d).trim()))));
  return { child, port };
}

async function load(port, size, durationMs) {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: CONNECTIONS, pipelining: 1 });
  const deadline = Date.now() + durationMs;
  let requests = 0;
  const worker = async () => {
    while (Date.now() < deadline) {
      const res = await pool.request({ path: `/${size}`, method: 'GET' });
      for await (const _chunk of res.body);
      requests++;
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  await pool.close();
  return requests;
}

/**
 * What a NIC that really avoids the copy saves the sender per byte, roughly: one memcpy, from
 * cache (a body sent again and again) or from memory (a body bigger than the caches).
 */
function copyNsPerByte(size) {
  const src = Buffer.alloc(size, 1);
  const dst = Buffer.alloc(size);
  for (let i = 0; i < 5; i++) src.copy(dst);
  const n = Math.max(5, (512 << 20) / size);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) src.copy(dst);
  return Number(process.hrtime.bigint() - t0) / (n * size);
}

// All variants run side by side and take turns per size, so background load hits them alike.
const servers = {};
for (const variant of VARIANTS) servers[variant] = await start(variant);
for (const variant of VARIANTS) await load(servers[variant].port, 1024, 1000); // warm-up
const samples = {};
for (let round = 0; round < rounds; round++) {
  for (const size of SIZES) {
    const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]);
    for (const variant of order) {
      const { child, port } = servers[variant];
      const cpu0 = cpuSeconds(child.pid);
      const t0 = process.hrtime.bigint();
      const requests = await load(port, size, seconds * 1000);
      const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
      const cpu = cpuSeconds(child.pid) - cpu0;
      (samples[`${variant} ${size}`] ??= []).push({ rps: requests / elapsed, cpuUs: (cpu / requests) * 1e6 });
    }
  }
}
for (const { child } of Object.values(servers)) {
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const stat = (variant, size, key) => median(samples[`${variant} ${size}`].map((s) => s[key]));
console.log('size      variant   req/s  (vs plain)  server CPU us/req  (vs plain)');
for (const size of SIZES) {
  for (const variant of VARIANTS) {
    const rps = stat(variant, size, 'rps');
    const cpu = stat(variant, size, 'cpuUs');
    console.log(
      `${String(size).padEnd(9)} ${variant.padEnd(8)} ${rps.toFixed(0).padStart(6)}  ${(rps / stat('plain', size, 'rps')).toFixed(3).padStart(8)}  ${cpu.toFixed(1).padStart(14)}  ${(cpu - stat('plain', size, 'cpuUs')).toFixed(1).padStart(+10)}`,
    );
  }
}
// On loopback the kernel copies SEND_ZC data anyway, so "forced" minus "plain" at small sizes is
// the Sender path's fixed cost per reply; a NIC that really avoids the copy saves about one
// memcpy per byte, so the path pays off from about cost / (memcpy ns per byte).
const small = SIZES.filter((s) => s <= 16384);
const fixedUs = median(small.map((s) => stat('forced', s, 'cpuUs') - stat('plain', s, 'cpuUs')));
const cached = copyNsPerByte(1 << 20);
const uncached = copyNsPerByte(64 << 20);
console.log(`\nSender path fixed cost per reply (forced - plain, <= 16 KiB): ${fixedUs.toFixed(1)} us`);
console.log(`memcpy: ${cached.toFixed(3)} ns/byte from cache, ${uncached.toFixed(3)} ns/byte from memory`);
const kib = (ns) => Math.round((fixedUs * 1000) / ns / 1024);
console.log(`break-even body size on a zero-copy NIC: about ${kib(uncached)} KiB (memory-bound) to ${kib(cached)} KiB (cache-hot)`);
