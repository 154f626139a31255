// The Node.js `socket.io-client` loop of the benchmark's Socket.IO part, in its own process; bench/run.py starts it.
//
// One cycle as the pack's Socket.IO user does it: connect (WebSocket transport only, a manager of
// its own, no reconnection) and wait for the namespace's `connect`, one `chat` event with an
// acknowledgement awaited, then `disconnect()` (the namespace DISCONNECT, then the close frame).
// N concurrent loops at zero hold and pause. One JSON line on stdout, the shape of client.js's.
//
//   node bench/node/sio_client.js --mode throughput --url ws://127.0.0.1:PORT/ --users 48 --seconds 5

'use strict';

const { io } = require('socket.io-client');
const { loopsThroughput, runMain } = require('./common');

const PAYLOAD = { text: 'flap bench' }; // what bench/conversations/socketio-ack.yaml emits
const TIMEOUT_MS = 5000; // every wait of a cycle is bounded

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

async function throughput(args) {
  return loopsThroughput(args, () => cycle(args.url));
}

// The client takes the server's HTTP origin.
runMain('node-sio', { throughput }, {}, (args) => ({ ...args, url: args.url.replace(/^ws/, 'http') }));
