// The Node.js `socket.io-client` loop of the benchmark's Socket.IO part, in its own process; bench/run.py starts it.
//
// One cycle as the pack's Socket.IO user does it: connect (WebSocket transport only, a manager of
// its own, no reconnection) and wait for the namespace's `connect`, one `chat` event with an
// acknowledgement awaited, then `disconnect()` (the namespace DISCONNECT, then the close frame).
// N concurrent loops at zero hold and pause. One JSON line on stdout, the shape of client.js's.
//
//   node bench/node/sio_client.js --mode throughput --url ws://127.0.0.1:PORT/ --users 48 --seconds 5

'use strict';

const { performance } = require('perf_hooks');
const { io } = require('socket.io-client');

const PAYLOAD = { text: 'flap bench' }; // what bench/conversations/socketio-ack.yaml emits
const TIMEOUT_MS = 5000; // every wait of a cycle is bounded
const WARMUP_S = 1.5; // cycles starting before this are not counted
const HARD_LIMIT_S = 900; // no run is longer than this

function parseArgs(argv) {
  const args = { users: 48, seconds: 5 };
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

function connect(url) {
  const socket = io(url, {
    transports: ['websocket'],
    forceNew: true, // a connection of its own per cycle, as a flapping client
    reconnection: false,
    timeout: TIMEOUT_MS,
    perMessageDeflate: false, // as client.js and the pack: no compression (the client offers it by default)
  });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (error) => {
      socket.close();
      reject(error);
    });
  });
}

async function cycle(url) {
  const socket = await connect(url);
  try {
    const answer = await socket.timeout(TIMEOUT_MS).emitWithAck('chat', PAYLOAD);
    if (!answer || answer.ok !== true) throw new Error('unexpected ack');
  } finally {
    socket.disconnect();
  }
}

function runLoops(args) {
  const state = { completed: 0, errors: {}, stop: false };
  for (let user = 0; user < args.users; user++) {
    (async () => {
      while (!state.stop) {
        try {
          await cycle(args.url);
          state.completed += 1;
        } catch (error) {
          const key = error.code || error.message || 'error';
          state.errors[key] = (state.errors[key] || 0) + 1;
          await sleep(10); // a failing server is not hammered in a tight loop
        }
      }
    })();
  }
  return state;
}

async function throughput(args) {
  const state = runLoops(args);
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

async function main() {
  const args = parseArgs(process.argv.slice(2));
  setTimeout(() => process.exit(3), (HARD_LIMIT_S + 60) * 1000).unref();
  if (args.mode !== 'throughput') throw new Error(`unknown mode ${args.mode} (only throughput)`);
  args.url = args.url.replace(/^ws/, 'http'); // the client takes the server's HTTP origin
  const result = await throughput(args);
  const line = JSON.stringify({ client: 'node-sio', mode: args.mode, users: args.users, ...result }) + '\n';
  process.stdout.write(line, () => process.exit(0));
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
