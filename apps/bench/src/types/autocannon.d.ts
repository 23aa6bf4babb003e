// The part of autocannon's (untyped) API the fallback runner uses.
declare module 'autocannon' {
  interface AutocannonOptions {
    url: string;
    connections: number;
    duration: number;
    timeout: number;
  }
  interface AutocannonResult {
    requests: { total: number };
    throughput: { total: number };
    duration: number;
    errors: number;
    timeouts: number;
    non2xx: number;
  }
  function autocannon(options: AutocannonOptions): Promise<AutocannonResult>;
  export default autocannon;
}
