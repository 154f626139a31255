// What the benchmark's Node.js loops share (client.js, sio_client.js, mqtt_client.js): arguments,
// timing, the throughput window, the zero-hold loops and the one JSON line on stdout.

'use strict';

const { performance } = require('perf_hooks');

const WARMUP_S = 1.5; // cycles starting before this are not counted
const HARD_LIMIT_S = 900; // no run is longer than this

// `--name value` pairs into { name: value } (camelCase names; numbers but for --mode and --url).
function parseArgs(argv, defaults) {
  const args = { users: 48, seconds: 5, ...defaults };
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

// Zero hold: cycles/s and CPU per 1,000 cycles over `args.seconds` after the warm-up, of loops
// that count `state.completed` and `state.errors` and end when `state.stop` is set.
async function throughputWindow(state, args) {
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

// Throughput of `args.users` concurrent loops of `cycle(user)` (a promise) at zero hold and pause:
// each counts its completed cycles and its errors by code until the window ends; a failed cycle is
// followed by 10 ms, so a failing server is not hammered in a tight loop.
async function loopsThroughput(args, cycle) {
  const state = { completed: 0, errors: {}, stop: false };
  for (let user = 0; user < args.users; user++) {
    (async () => {
      while (!state.stop) {
        try {
          await cycle(user);
          state.completed += 1;
        } catch (error) {
          const key = error.code || error.message || 'error';
          state.errors[key] = (state.errors[key] || 0) + 1;
          await sleep(10);
        }
      }
    })();
  }
  return throughputWindow(state, args);
}

// Parse the arguments, run `modes[args.mode]`, print its result as one JSON line and exit;
// a hard stop after HARD_LIMIT_S whatever happens.
function runMain(client, modes, defaults, prepare = (args) => args) {
  const main = async () => {
    const args = prepare(parseArgs(process.argv.slice(2), defaults));
    setTimeout(() => process.exit(3), (HARD_LIMIT_S + 60) * 1000).unref();
    if (!modes[args.mode]) throw new Error(`unknown mode ${args.mode}`);
    const result = await modes[args.mode](args);
    const line = JSON.stringify({ client, mode: args.mode, users: args.users, ...result }) + '\n';
    process.stdout.write(line, () => process.exit(0)); // a pipe takes big lines in parts: exit once all is out
  };
  main().catch((error) => {
    process.stderr.write(`${error.stack || error}\n`);
    process.exit(1);
  });
}

module.exports = { WARMUP_S, sleep, cpuSeconds, throughputWindow, loopsThroughput, runMain };
