// The Node.js `mqtt` (MQTT.js) loop of the benchmark's MQTT part, in its own process; bench/run.py starts it.
//
// One cycle as the pack's MQTT user does it (bench/conversations/mqtt-cycle.yaml): connect over
// WebSocket (subprotocol mqtt, MQTT 3.1.1, clean session, no reconnection) and wait for CONNACK,
// SUBSCRIBE to the user's own topic and wait for SUBACK, PUBLISH QoS 0 to it and wait for its
// delivery, then end() (DISCONNECT, then the close). N concurrent loops at zero hold and pause.
// One JSON line on stdout, the shape of client.js's.
//
//   node bench/node/mqtt_client.js --mode throughput --url ws://127.0.0.1:PORT/ --users 48 --seconds 5

'use strict';

const mqtt = require('mqtt');
const { loopsThroughput, runMain } = require('./common');

const PAYLOAD = 'flap bench'; // what bench/conversations/mqtt-cycle.yaml publishes
const TIMEOUT_MS = 5000; // every wait of a cycle is bounded

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out`)), TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function cycle(url, user) {
  const topic = `bench/${user}`;
  const client = await withTimeout(
    mqtt.connectAsync(url, {
      clientId: `flap-${user}`,
      protocolVersion: 4,
      clean: true,
      keepalive: 60,
      reconnectPeriod: 0,
      connectTimeout: TIMEOUT_MS,
      wsOptions: { perMessageDeflate: false }, // as the pack: no compression offered
    }),
    'connect'
  );
  try {
    await withTimeout(client.subscribeAsync(topic, { qos: 0 }), 'subscribe');
    const delivered = new Promise((resolve) => {
      client.once('message', (got) => got === topic && resolve());
    });
    client.publish(topic, PAYLOAD, { qos: 0 });
    await withTimeout(delivered, 'delivery');
  } finally {
    await client.endAsync();
  }
}

async function throughput(args) {
  return loopsThroughput(args, (user) => cycle(args.url, user));
}

runMain('node-mqtt', { throughput }, {});
