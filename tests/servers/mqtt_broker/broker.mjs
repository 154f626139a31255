// A real MQTT broker (aedes, MQTT 3.1.1) with a WebSocket listener on 127.0.0.1, for the codec's interop test
// and the pack's MQTT runs. Prints `app-server ready port=<PORT> pid=<PID>` once it listens; exits 0 on SIGTERM.
// GET /metrics (Prometheus text) exports `mqtt_sessions`: the sessions the broker holds, connected clients plus
// the persistent sessions (clean session 0) of clients gone, which 3.1.1 keeps until the same client id returns.
// MQTT_BROKER_USER and MQTT_BROKER_PASSWORD (environment, never argv) switch credential checks on.
import { createServer } from 'node:http'
import { Aedes } from 'aedes'
import { WebSocketServer, createWebSocketStream } from 'ws'

const wholePackets = process.argv.includes('--whole-packets')
const user = process.env.MQTT_BROKER_USER
const password = process.env.MQTT_BROKER_PASSWORD
const aedes = await Aedes.createBroker()
if (user !== undefined) {
  aedes.authenticate = (client, username, pw, callback) => {
    if (username === user && pw !== undefined && pw.toString() === password) {
      callback(null, true)
    } else {
      const error = new Error('bad user name or password')
      error.returnCode = 4
      callback(error, null)
    }
  }
}

// Client ids of the sessions held: a clean session ends with its connection, a persistent one stays.
const sessions = new Set()
aedes.on('client', (client) => sessions.add(client.id))
aedes.on('clientDisconnect', (client) => {
  if (client.clean) sessions.delete(client.id)
})

const httpServer = createServer((request, response) => {
  if (request.url === '/metrics') {
    response.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' })
    response.end(`# HELP mqtt_sessions MQTT sessions held (connected or persistent)\n# TYPE mqtt_sessions gauge\nmqtt_sessions ${sessions.size}\n`)
  } else {
    response.writeHead(404)
    response.end()
  }
})
// The subprotocol `mqtt` is the one MQTT over WebSocket names (MQTT 3.1.1 section 6).
const wss = new WebSocketServer({
  server: httpServer,
  handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : false)
})
wss.on('connection', (websocket, request) => {
  const stream = createWebSocketStream(websocket)
  if (wholePackets) {
    // aedes writes a packet in pieces inside one cork (mqtt-packet); each piece would be a frame of
    // its own. With _writev the corked pieces go out together: one frame per packet or per burst.
    stream._writev = (chunks, callback) => stream._write(Buffer.concat(chunks.map((c) => c.chunk)), null, callback)
  }
  aedes.handle(stream, request)
})
httpServer.listen(0, '127.0.0.1', () => {
  process.stdout.write(`app-server ready port=${httpServer.address().port} pid=${process.pid}\n`)
})
process.on('SIGTERM', () => {
  aedes.close(() => httpServer.close(() => process.exit(0)))
  setTimeout(() => process.exit(0), 1000).unref()
})
