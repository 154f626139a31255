// The Node.js `ws` client loop of the benchmark, in its own process; bench/run.py starts it.
//
// The same cycle as the Python generators: connect + handshake, one echo, hold, clean close
// (close frame, wait for the server's close and the end of TCP), pause. Modes as in
// bench/python_gen.py: throughput, timing, memory. One JSON line on stdout.
//
//   node bench/node/client.js --mode throughput --url ws://127.0.0.1:PORT/ --users 48 --seconds 5

'use strict';

const { performance } = require('perf_hooks');
const WebSocket = require('ws');

const MESSAGE = 'flap bench';
const WARMUP_S = 1.5; // cycles starting before this are not counted
const HARD_LIMIT_S = 900; // no mode runs longer than this

function parseArgs(argv) {
  const args = { users: 48, seconds: 5, holdMs: 100, pauseMs: 50, connections: 2000 };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    args[name] = ['mode', 'url'].includes(name) ? argv[i + 1] : Number(argv[i + 1]);
  }
  args.seconds = Math.min(args.seconds, HARD_LIMIT_S);
  return args;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms > 0 ? ms : 0));
const cpuSeconds = () => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
};

function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 5000 });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function echo(ws) {
  return new Promise((resolve, reject) => {
    ws.once('message', resolve);
    ws.once('error', reject);
    ws.send(MESSAGE);
  });
}

function close(ws) {
  return new Promise((resolve) => {
    ws.once('close', resolve);
    ws.close(1000);
  });
}

async function cycle(url, holdMs) {
  const start = performance.now();
  const ws = await open(url);
  const connected = performance.now();
  await echo(ws);
  await sleep(connected + holdMs - performance.now());
  const closeStart = performance.now();
  await close(ws);
  return [start, connected, closeStart, performance.now()];
}

function runLoops(args, holdMs, pauseMs, record) {
  const state = { completed: 0, errors: {}, cycles: [], stop: false };
  const period = holdMs + pauseMs;
  const loops = [];
  for (let user = 0; user < args.users; user++) {
    loops.push(
      (async () => {
        await sleep((period * user) / args.users);
        while (!state.stop) {
          try {
            const stamps = await cycle(args.url, holdMs);
            state.completed += 1;
            if (record) state.cycles.push([...stamps, user]);
          } catch (error) {
            const key = error.code || error.message || 'error';
            state.errors[key] = (state.errors[key] || 0) + 1;
          }
          await sleep(pauseMs);
        }
      })(),
    );
  }
  state.done = Promise.all(loops);
  return state;
}

async function throughput(args) {
  const state = runLoops(args, 0, 0, false);
  await sleep(WARMUP_S * 1000);
  const [cycles0, cpu0, wall0] = [state.completed, cpuSeconds(), performance.now()];
  await sleep(args.seconds * 1000);
  const [cycles1, cpu1, wall1] = [state.completed, cpuSeconds(), performance.now()];
  state.stop = true;
  const cycles = cycles1 - cycles0;
  const seconds = (wall1 - wall0) / 1000;
  return {
    cycles,
    seconds,
    cycles_per_s: cycles / seconds,
    cpu_s_per_1000: cycles ? ((cpu1 - cpu0) / cycles) * 1000 : null,
    cpu_share: (cpu1 - cpu0) / seconds,
    errors: state.errors,
  };
}

async function timing(args) {
  const t0 = performance.now();
  const cpu0 = cpuSeconds();
  const state = runLoops(args, args.holdMs, args.pauseMs, true);
  await sleep((WARMUP_S + args.seconds) * 1000);
  state.stop = true;
  const cpu = cpuSeconds() - cpu0;
  const window = [t0 + WARMUP_S * 1000, t0 + (WARMUP_S + args.seconds) * 1000];
  const cycles = state.cycles
    .filter((c) => c[0] >= window[0] && c[0] < window[1])
    .map(([s, c, cs, ce, u]) => [s - t0, c - t0, cs - t0, ce - t0, u].map((v) => Math.round(v * 1000) / 1000));
  return { cycles, cpu_share: cpu / ((performance.now() - t0) / 1000), errors: state.errors };
}

async function memory(args) {
  if (global.gc) global.gc();
  const before = process.memoryUsage().rss;
  const held = [];
  const errors = {};
  for (let start = 0; start < args.connections; start += 100) {
    const batch = [];
    for (let i = start; i < Math.min(start + 100, args.connections); i++) {
      batch.push(
        open(args.url)
          .then(async (ws) => {
            await echo(ws);
            held.push(ws);
          })
          .catch((error) => {
            errors[error.code || 'error'] = (errors[error.code || 'error'] || 0) + 1;
          }),
      );
    }
    await Promise.all(batch);
  }
  await sleep(500);
  if (global.gc) global.gc();
  const after = process.memoryUsage().rss;
  for (const ws of held) ws.terminate();
  return {
    connections: held.length,
    rss_before: before,
    rss_after: after,
    bytes_per_connection: held.length ? (after - before) / held.length : null,
    errors,
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  setTimeout(() => process.exit(3), (HARD_LIMIT_S + 60) * 1000).unref();
  const modes = { throughput, timing, memory };
  if (!modes[args.mode]) throw new Error(`unknown mode ${args.mode}`);
  const result = await modes[args.mode](args);
  const line = JSON.stringify({ client: 'node', mode: args.mode, users: args.users, ...result }) + '\n';
  process.stdout.write(line, () => process.exit(0)); // a pipe takes big lines in parts: exit once all is out
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
