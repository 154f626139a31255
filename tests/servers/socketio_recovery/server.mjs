// A real Socket.IO server (socket.io 4) streaming numbered `tick` events to every user's room, for the continuity tests.
// Each connection names its user in the CONNECT auth ({user: N}) and joins the room `user-N`; every
// --interval-ms, each room that ever had a user gets `tick {n}` with its own counter, whether or not
// anyone is connected. --recovery turns on connectionStateRecovery: a client that reconnects with its
// session id and offset gets back its rooms and the ticks it missed. Without it, a reconnect joins the
// room afresh and what was sent meanwhile is lost.
// Prints `app-server ready port=<PORT> pid=<PID>` once it listens; exits 0 on SIGTERM.
import { createServer } from 'node:http'
import { Server } from 'socket.io'

const args = process.argv.slice(2)
const recovery = args.includes('--recovery')
const intervalIndex = args.indexOf('--interval-ms')
const intervalMs = intervalIndex >= 0 ? Number(args[intervalIndex + 1]) : 20

const httpServer = createServer()
const io = new Server(httpServer, {
  transports: ['websocket'],
  ...(recovery ? { connectionStateRecovery: { maxDisconnectionDuration: 120000, skipMiddlewares: true } } : {})
})
const counters = new Map() // room -> the last number sent to it

io.on('connection', (socket) => {
  const user = socket.handshake.auth && socket.handshake.auth.user
  const room = `user-${user}`
  if (!counters.has(room)) counters.set(room, 0)
  if (!socket.recovered) socket.join(room) // a recovered socket has its rooms back
})

setInterval(() => {
  for (const [room, last] of counters) {
    counters.set(room, last + 1)
    io.to(room).emit('tick', { n: last + 1 })
  }
}, intervalMs)

httpServer.listen(0, '127.0.0.1', () => {
  process.stdout.write(`app-server ready port=${httpServer.address().port} pid=${process.pid}\n`)
})
process.on('SIGTERM', () => {
  io.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 1000).unref()
})
