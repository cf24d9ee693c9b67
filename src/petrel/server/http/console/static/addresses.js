// Addresses: a broker's addresses (anycast queues, multicast topics) or a router's
// address table (local receivers and senders, routers elsewhere with receivers).

import { call, query } from './api.js';
import { h, rate, table, text, yesNo } from './dom.js';

export const title = 'Addresses';
export const kinds = ['broker', 'router'];

let list;

export function mount(ctx) {
  list = h('div');
  ctx.view.append(h('h2', {}, 'Addresses'), list);
}

export async function update(ctx) {
  if (ctx.kind === 'router') {
    const rows = (await query('petrel.router.address')).map((a) => ({
      ...a,
      in_rate: ctx.rate(`a.in.${a.identity}`, a.delivered_in),
      out_rate: ctx.rate(`a.out.${a.identity}`, a.delivered_out),
    }));
    list.replaceChildren(table([
      { key: 'address', label: 'Address' },
      { key: 'distribution', label: 'Distribution' },
      { key: 'local_receivers', label: 'Receivers here', num: true },
      { key: 'local_senders', label: 'Senders here', num: true },
      { key: 'remote_routers', label: 'Receivers on routers', format: (v) => (v ?? []).join(', ') },
      { key: 'in_rate', label: 'In /s', num: true, format: rate },
      { key: 'out_rate', label: 'Out /s', num: true, format: rate },
      { key: 'delivered_in', label: 'Delivered in', num: true },
      { key: 'delivered_out', label: 'Delivered out', num: true },
    ], rows, { id: 'addresses', empty: 'No addresses.' }));
    return;
  }
  const rows = await query('petrel.address');
  list.replaceChildren(table([
    { key: 'name', label: 'Address' },
    { key: 'routing', label: 'Routing' },
    { key: 'declared', label: 'Declared', format: yesNo },
    { key: 'queues', label: 'Queues', num: true },
    { key: 'consumers', label: 'Consumers', num: true },
    { key: 'depth', label: 'Depth', num: true },
  ], rows, {
    id: 'addresses',
    empty: 'No addresses.',
    actions: (row) => [h('button', { type: 'button', class: 'danger', onclick: () => remove(ctx, row) }, 'Delete')],
  }));
}

async function remove(ctx, row) {
  const answer = await ctx.ask(`Delete ${row.name}`,
    `Delete the address ${text(row.name)} with its queues and their ${row.depth} messages?`, [], 'Delete', true);
  if (!answer) return;
  try {
    await call('DELETE', 'petrel.address', row.identity);
    ctx.notify(`Deleted the address ${row.name}.`);
  } catch (error) {
    ctx.failed(`Deleting ${row.name}`, error);
  }
  await ctx.refresh();
}
