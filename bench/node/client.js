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
const { WARMUP_S, sleep, cpuSeconds, throughputWindow, runMain } = require('./common');

const MESSAGE = 'flap bench';
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
  return throughputWindow(runLoops(args, 0, 0, false), args);
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

runMain('node', { throughput, timing, memory }, { holdMs: 100, pauseMs: 50, connections: 2000 });
