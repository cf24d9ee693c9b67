// Overview: the server's totals, message rates (from its counters between two reads)
// and, on a broker, the deepest queues.

import { query } from './api.js';
import { card, duration, h, num, rate, sparkline, table } from './dom.js';

export const title = 'Overview';
export const kinds = ['broker', 'router'];

let cards;
let extra;

export function mount(ctx) {
  cards = h('div', { class: 'cards', id: 'overview-cards' });
  extra = h('div', { class: 'section' });
  ctx.view.append(h('h2', {}, 'Overview'), cards, extra);
}

function serverName(name) {
  document.getElementById('server-name').textContent = name ?? '';
}

function figure(ctx, label, id, value, format = num) {
  return card(label, format(value), id, sparkline(ctx.history(id, value)));
}

export async function update(ctx) {
  if (ctx.kind === 'router') {
    const [router] = await query('petrel.router');
    serverName(router.id);
    const inRate = ctx.rate('router.in', router.deliveries_in);
    const outRate = ctx.rate('router.out', router.deliveries_out);
    cards.replaceChildren(
      figure(ctx, 'Deliveries in /s', 'in-rate', inRate, rate),
      figure(ctx, 'Deliveries out /s', 'out-rate', outRate, rate),
      card('Routers reachable', num(router.nodes), 'nodes'),
      card('Neighbours', num(router.neighbours), 'neighbours'),
      card('Connections', num(router.connections), 'connections'),
      card('Links', num(router.links), 'links'),
      card('Addresses', num(router.addresses), 'addresses'),
      card('Unsettled', num(router.deliveries_unsettled), 'unsettled'),
      card('Waiting for credit', num(router.deliveries_waiting), 'waiting'),
      card('Released', num(router.deliveries_released), 'released'),
      card('Topology changes', num(router.topology_changes), 'topology-changes'),
      card('Uptime', duration(router.uptime), 'uptime'),
    );
    extra.replaceChildren();
    return;
  }
  const [[broker], queues] = await Promise.all([
    query('petrel.broker'),
    query('petrel.queue', ['name', 'address', 'depth', 'consumers', 'enqueued', 'acknowledged']),
  ]);
  serverName(broker.name);
  const inRate = ctx.rate('broker.in', broker.enqueued);
  const ackRate = ctx.rate('broker.acked', broker.acknowledged);
  cards.replaceChildren(
    figure(ctx, 'Messages in /s', 'in-rate', inRate, rate),
    figure(ctx, 'Acknowledged /s', 'ack-rate', ackRate, rate),
    figure(ctx, 'Messages held', 'depth', broker.depth),
    card('Connections', num(broker.connections), 'connections'),
    card('Queues', num(broker.queues), 'queues'),
    card('Addresses', num(broker.addresses), 'addresses'),
    card('Enqueued', num(broker.enqueued), 'enqueued'),
    card('Dead-lettered', num(broker.dead_lettered), 'dead-lettered'),
    card('Expired', num(broker.expired), 'expired'),
    card('Store', broker.store, 'store'),
    card('Uptime', duration(broker.uptime), 'uptime'),
    card('Version', broker.version, 'version'),
  );
  const deepest = [...queues].sort((a, b) => b.depth - a.depth || a.name.localeCompare(b.name)).slice(0, 8);
  extra.replaceChildren(
    h('h2', {}, 'Deepest queues'),
    table([
      { key: 'name', label: 'Queue' },
      { key: 'depth', label: 'Depth', num: true },
      { key: 'consumers', label: 'Consumers', num: true },
      { key: 'enqueued', label: 'Enqueued', num: true },
      { key: 'acknowledged', label: 'Acknowledged', num: true },
    ], deepest, { id: 'deepest-queues', empty: 'No queues.' }),
  );
}
