// Child process for the autocannon fallback (used where wrk is absent):
//   node autocannon-runner.js <url> <connections> <seconds>
// prints "ZCBENCH {json}" with the same fields the wrk script reports.
import autocannon from 'autocannon';

const [url, connections, seconds] = process.argv.slice(2);
const result = await autocannon({ url: url!, connections: Number(connections), duration: Number(seconds), timeout: 30 });
const report = {
  requests: result.requests.total,
  bytes: result.throughput.total,
  seconds: result.duration,
  errors: result.errors,
  timeouts: result.timeouts,
  non2xx: result.non2xx,
};
process.stdout.write(`ZCBENCH ${JSON.stringify(report)}\n`);
