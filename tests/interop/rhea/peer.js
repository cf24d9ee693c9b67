// rhea (Node.js) as an AMQP 1.0 peer for Petrel's interop tests.
//
//   node peer.js send URL ADDRESS COUNT          sends COUNT messages, waits for every outcome
//   node peer.js receive URL ADDRESS COUNT [SELECTOR]
//                                                receives COUNT messages, accepts them
//   node peer.js request URL ADDRESS BODY        request/response through a dynamic reply queue
//   node peer.js broker PORT                     a small in-memory broker (one FIFO per address;
//                                                no dynamic nodes)
//
// URL is amqp://[user:password@]host:port, or ws://host:port/path for AMQP over WebSocket.
// Every mode prints one JSON line with what happened, then exits 0 (or 1 on an error).
'use strict';
const rhea = require('rhea');

const [mode, ...args] = process.argv.slice(2);

function connectTo(url) {
  const u = new URL(url);
  const container = rhea.create_container({ id: 'rhea-' + process.pid });
  let options = { host: u.hostname, port: Number(u.port || 5672), reconnect: false };
  if (u.username) {
    // amqp://user:password@host:port: rhea then authenticates with SASL PLAIN.
    options.username = decodeURIComponent(u.username);
    options.password = decodeURIComponent(u.password);
  }
  if (u.protocol === 'ws:' || u.protocol === 'wss:') {
    // AMQP over WebSocket (the OASIS binding): the 'ws' package, subprotocol 'amqp'.
    const WebSocket = require('ws');
    const dial = container.websocket_connect(WebSocket);
    options = { connection_details: dial(url, ['amqp'], {}), reconnect: false };
  }
  const connection = container.connect(options);
  connection.on('connection_error', (ctx) => fail(ctx.connection.error || ctx.error));
  connection.on('disconnected', (ctx) => { if (ctx.error) fail(ctx.error); });
  return { container, connection };
}

function fail(error) {
  console.log(JSON.stringify({ error: String(error && (error.condition || error.message || error)),
                               description: error && error.description }));
  process.exit(1);
}

function done(result, connection) {
  console.log(JSON.stringify(result));
  if (connection) connection.close();
  setTimeout(() => process.exit(0), 50);
}

if (mode === 'send') {
  const [url, address, countText] = args;
  const count = Number(countText);
  const { connection } = connectTo(url);
  const sender = connection.open_sender({ target: { address } });
  let sent = 0, accepted = 0, rejected = 0;
  sender.on('sendable', (ctx) => {
    while (ctx.sender.sendable() && sent < count) {
      ctx.sender.send({ body: 'm' + sent, application_properties: { i: sent }, durable: true });
      sent++;
    }
  });
  sender.on('accepted', () => { if (++accepted + rejected === count) done({ sent, accepted, rejected }, connection); });
  sender.on('rejected', () => { if (accepted + ++rejected === count) done({ sent, accepted, rejected }, connection); });
} else if (mode === 'receive') {
  const [url, address, countText, selector] = args;
  const count = Number(countText);
  const { connection } = connectTo(url);
  const source = { address };
  if (selector) source.filter = rhea.filter.selector(selector);
  const receiver = connection.open_receiver({ source, autoaccept: true, credit_window: 100 });
  const bodies = [];
  receiver.on('message', (ctx) => {
    bodies.push(ctx.message.body);
    if (bodies.length === count) done({ bodies }, connection);
  });
  receiver.on('receiver_error', (ctx) => fail(ctx.receiver.error));
  receiver.on('receiver_close', (ctx) => { if (ctx.receiver.error) fail(ctx.receiver.error); });
} else if (mode === 'request') {
  const [url, address, body] = args;
  const { connection } = connectTo(url);
  const sender = connection.open_sender({ target: { address } });
  const replies = connection.open_receiver({ source: { dynamic: true } });
  replies.on('receiver_open', (ctx) => {
    const replyTo = ctx.receiver.source.address;
    const send = () => sender.send({ message_id: 'req-1', reply_to: replyTo, body });
    if (sender.sendable()) send(); else sender.once('sendable', send);
  });
  replies.on('message', (ctx) => done({
    body: ctx.message.body, correlation_id: ctx.message.correlation_id,
  }, connection));
} else if (mode === 'broker') {
  const port = Number(args[0]);
  const container = rhea.create_container({ id: 'rhea-broker' });
  const queues = new Map();
  const queue = (name) => {
    if (!queues.has(name)) queues.set(name, { messages: [], consumers: [] });
    return queues.get(name);
  };
  const pump = (name) => {
    const q = queue(name);
    let progress = true;
    while (q.messages.length && progress) {
      progress = false;
      for (const link of q.consumers) {
        // Never send on a link before our own attach for it has gone out.
        if (q.messages.length && link.is_open() && link.sendable()) {
          link.send(q.messages.shift());
          progress = true;
        }
      }
    }
  };
  container.on('sender_open', (ctx) => {
    const source = ctx.sender.remote.attach.source || {};
    ctx.sender.set_source(source);  // echo the terminus: a null source would mean "refused"
    const name = source.address;
    ctx.sender.petrel_queue = name;
    queue(name).consumers.push(ctx.sender);
    setImmediate(() => pump(name));  // rhea opens the link once this handler returns
  });
  container.on('receiver_open', (ctx) => {
    // Answer with the terminus the client asked for (a null target would mean "refused").
    ctx.receiver.set_target(ctx.receiver.remote.attach.target);
  });
  // Deferred: rhea writes a link's transfers ahead of its attach if both are pending in
  // one turn, and a peer rightly refuses a transfer on a handle it has not seen attached.
  container.on('sendable', (ctx) => setImmediate(() => pump(ctx.sender.petrel_queue)));
  const forget = (ctx) => {
    const name = ctx.sender && ctx.sender.petrel_queue;
    if (name !== undefined) {
      const q = queue(name);
      q.consumers = q.consumers.filter((l) => l !== ctx.sender);
    }
  };
  container.on('sender_close', forget);
  container.on('message', (ctx) => {
    const name = (ctx.receiver.target && ctx.receiver.target.address) || ctx.message.to;
    queue(name).messages.push(ctx.message);
    pump(name);
  });
  const server = container.listen({ port, host: '127.0.0.1' });
  server.on('listening', () => console.log('READY'));
} else {
  fail('unknown mode ' + mode);
}
