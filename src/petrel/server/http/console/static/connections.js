// Connections and their links; a connection can be closed (DELETE: the server closes
// it with amqp:connection:forced).

import { call, query } from './api.js';
import { h, table, yesNo } from './dom.js';

export const title = 'Connections';
export const kinds = ['broker', 'router'];

let connections;
let links;

export function mount(ctx) {
  connections = h('div');
  links = h('div');
  ctx.view.append(h('h2', {}, 'Connections'), connections, h('h2', {}, 'Links'), links);
}

function since(epoch) {
  if (!epoch) return '–';
  return new Date(epoch * 1000).toLocaleTimeString('en-GB');
}

export async function update(ctx) {
  const [conns, attached] = await Promise.all([query('petrel.connection'), query('petrel.link')]);
  connections.replaceChildren(table([
    { key: 'name', label: 'Id' },
    { key: 'container', label: 'Container' },
    { key: 'host', label: 'From' },
    { key: 'user', label: 'User', format: (v) => v ?? 'anonymous' },
    { key: 'tls', label: 'TLS', format: yesNo },
    { key: 'listener', label: 'Listener' },
    { key: 'opened', label: 'Opened', format: since },
    { key: 'sessions', label: 'Sessions', num: true },
    { key: 'links', label: 'Links', num: true },
  ], conns, {
    id: 'connections',
    empty: 'No connections.',
    actions: (row) => [h('button', { type: 'button', class: 'danger', onclick: () => close(ctx, row) }, 'Close')],
  }));
  links.replaceChildren(table([
    { key: 'name', label: 'Id' },
    { key: 'link_name', label: 'Link name' },
    { key: 'direction', label: 'Direction', format: (v) => (v === 'in' ? 'in (client sends)' : 'out (client receives)') },
    { key: 'address', label: 'Address', format: (v) => v ?? '(anonymous relay)' },
    { key: 'credit', label: 'Credit', num: true },
    { key: 'unsettled', label: 'Unsettled', num: true },
    { key: 'delivered', label: 'Delivered', num: true },
  ], attached, { id: 'links', empty: 'No links.' }));
}

async function close(ctx, row) {
  const answer = await ctx.ask(`Close ${row.name}`,
    `Close the connection ${row.name} of ${row.container} (from ${row.host})? The client is told amqp:connection:forced.`,
    [], 'Close', true);
  if (!answer) return;
  try {
    await call('DELETE', 'petrel.connection', row.identity);
    ctx.notify(`Closed the connection ${row.name} (${row.container}).`);
  } catch (error) {
    ctx.failed(`Closing ${row.name}`, error);
  }
  await ctx.refresh();
}
