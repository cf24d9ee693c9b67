// Queues (broker): depth, rates and consumers of each queue and subscription, with
// the queue operations of $management: PEEK, PURGE, MOVE, RETRY and DELETE.

import { call, query } from './api.js';
import { h, rate, table, text } from './dom.js';

export const title = 'Queues';
export const kinds = ['broker'];

const PEEK_COUNT = 20;

let list;
let peekPanel;
let peeking = null;
let addressNames = [];

export function mount(ctx) {
  list = h('div');
  peekPanel = h('section', { class: 'panel', id: 'peek', hidden: true });
  ctx.view.append(
    h('h2', {}, 'Queues and subscriptions'),
    list,
    peekPanel,
    h('datalist', { id: 'address-names' }),
  );
  peeking = null;
}

const ATTRIBUTES = ['name', 'identity', 'type', 'address', 'depth', 'available', 'unacknowledged',
  'consumers', 'enqueued', 'delivered', 'acknowledged', 'dead_lettered', 'bytes'];

export async function update(ctx) {
  const [plain, subscriptions, addresses] = await Promise.all([
    query('petrel.queue', ATTRIBUTES),
    query('petrel.subscription', ATTRIBUTES),
    query('petrel.address', ['name']),
  ]);
  addressNames = addresses.map((a) => a.name);
  document.getElementById('address-names')?.replaceChildren(...addressNames.map((n) => h('option', { value: n })));
  const rows = [...plain, ...subscriptions].map((q) => ({
    ...q,
    kind: q.type === 'petrel.queue' ? 'queue' : 'subscription',
    in_rate: ctx.rate(`q.in.${q.identity}`, q.enqueued),
    out_rate: ctx.rate(`q.out.${q.identity}`, q.delivered),
  }));
  list.replaceChildren(table([
    { key: 'name', label: 'Name' },
    { key: 'kind', label: 'Kind' },
    { key: 'address', label: 'Address' },
    { key: 'depth', label: 'Depth', num: true },
    { key: 'available', label: 'Available', num: true },
    { key: 'unacknowledged', label: 'Unacked', num: true },
    { key: 'consumers', label: 'Consumers', num: true },
    { key: 'in_rate', label: 'In /s', num: true, format: rate },
    { key: 'out_rate', label: 'Out /s', num: true, format: rate },
    { key: 'enqueued', label: 'Enqueued', num: true },
    { key: 'dead_lettered', label: 'Dead-lettered', num: true },
  ], rows, { id: 'queues', actions: (row) => actions(ctx, row), empty: 'No queues.' }));
  if (peeking) await peek(ctx, peeking, false);
}

function actions(ctx, row) {
  const queue = row.kind === 'queue';
  return [
    h('button', { type: 'button', onclick: () => peek(ctx, row, true) }, 'Peek'),
    h('button', { type: 'button', onclick: () => purge(ctx, row) }, 'Purge'),
    queue ? h('button', { type: 'button', onclick: () => move(ctx, row) }, 'Move') : null,
    queue ? h('button', { type: 'button', onclick: () => retry(ctx, row) }, 'Retry') : null,
    h('button', { type: 'button', class: 'danger', onclick: () => remove(ctx, row) }, 'Delete'),
  ];
}

async function act(ctx, what, done) {
  try {
    ctx.notify(await done());
  } catch (error) {
    ctx.failed(what, error);
  }
  await ctx.refresh();
}

async function purge(ctx, row) {
  const answer = await ctx.ask(`Purge ${row.name}`,
    `Remove every available message of ${row.name}? Messages a consumer holds unsettled stay until it settles them.`,
    [], 'Purge', true);
  if (!answer) return;
  await act(ctx, `Purging ${row.name}`, async () => {
    const body = await call('PURGE', row.type, row.identity);
    return `Purged ${body.purged} messages from ${row.name}.`;
  });
}

async function move(ctx, row) {
  const answer = await ctx.ask(`Move messages of ${row.name}`,
    'Available messages go, in order, to another address (it must exist).',
    [
      { name: 'to', label: 'To address', required: true, list: 'address-names' },
      { name: 'selector', label: 'Only those matching (JMS selector, optional)', placeholder: "region = 'eu'" },
      { name: 'count', label: 'At most (optional)', placeholder: 'all' },
    ], 'Move');
  if (!answer) return;
  const args = { to: answer.to };
  if (answer.selector.trim()) args.selector = answer.selector.trim();
  if (answer.count.trim()) args.count = Number(answer.count);
  await act(ctx, `Moving from ${row.name}`, async () => {
    const body = await call('MOVE', row.type, row.identity, args);
    return `Moved ${body.moved} messages from ${row.name} to ${answer.to}; ${body.left} left.`;
  });
}

async function retry(ctx, row) {
  await act(ctx, `Retrying ${row.name}`, async () => {
    const body = await call('RETRY', row.type, row.identity);
    return `Sent ${body.moved} messages of ${row.name} back to their queues; ${body.left} left.`;
  });
}

async function remove(ctx, row) {
  const answer = await ctx.ask(`Delete ${row.name}`,
    `Delete the ${row.kind} ${row.name} with its ${row.depth} messages? Its consumers are detached.`,
    [], 'Delete', true);
  if (!answer) return;
  await act(ctx, `Deleting ${row.name}`, async () => {
    await call('DELETE', row.type, row.identity);
    if (peeking && peeking.identity === row.identity) { peeking = null; peekPanel.hidden = true; }
    return `Deleted ${row.name}.`;
  });
}

async function peek(ctx, row, fresh) {
  peeking = row;
  let messages;
  try {
    messages = await call('PEEK', row.type, row.identity, { count: PEEK_COUNT });
  } catch (error) {
    if (fresh) ctx.failed(`Peeking at ${row.name}`, error);
    peeking = null;
    peekPanel.hidden = true;
    return;
  }
  peekPanel.hidden = false;
  peekPanel.dataset.queue = row.name;
  peekPanel.replaceChildren(
    h('h2', {}, `First ${PEEK_COUNT} available messages of ${row.name}`,
      h('button', { type: 'button', onclick: () => { peeking = null; peekPanel.hidden = true; } }, 'Close')),
    table([
      { key: 'seq', label: 'Seq', num: true },
      { key: 'message_id', label: 'Message id' },
      { key: 'subject', label: 'Subject' },
      { key: 'delivery_count', label: 'Deliveries', num: true },
      { key: 'size', label: 'Bytes', num: true },
      { key: 'application_properties', label: 'Properties', format: (v) => (v ? text(v) : '') },
      { key: 'body', label: 'Body', format: (v) => h('pre', {}, text(v)) },
    ], messages, { id: 'peeked', key: 'seq', empty: 'No available messages.' }),
  );
}
