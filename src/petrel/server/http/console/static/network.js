// Network (router): the routers this one can reach and the links between them with
// their costs, drawn from petrel.router.node (each router's advertised link costs).
// A router that stops goes out of the picture once this router no longer reaches it.

import { query } from './api.js';
import { h, num, s, table, yesNo } from './dom.js';

export const title = 'Network';
export const kinds = ['router'];

let picture;
let nodes;

export function mount(ctx) {
  picture = h('div', { id: 'network-picture' });
  nodes = h('div');
  ctx.view.append(h('h2', {}, 'Router network'), h('div', { class: 'network' }, picture, nodes));
}

const SIZE = 480;
const RADIUS = 26;

/** Routers on a circle, in id order (stable as routers come and go). */
function layout(ids) {
  const centre = SIZE / 2;
  const ring = ids.length === 1 ? 0 : SIZE / 2 - RADIUS - 30;
  const places = new Map();
  ids.forEach((id, index) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * index) / ids.length;
    places.set(id, { x: centre + ring * Math.cos(angle), y: centre + ring * Math.sin(angle) });
  });
  return places;
}

/** The links among ``shown`` routers, once each: a-b with the cost each end gives it. */
function edges(rows, shown) {
  const found = new Map();
  for (const row of rows) {
    if (!shown.has(row.id)) continue;
    for (const [peer, cost] of Object.entries(row.link_costs ?? {})) {
      if (!shown.has(peer)) continue;
      const [a, b] = row.id < peer ? [row.id, peer] : [peer, row.id];
      const key = `${a}|${b}`;
      const edge = found.get(key) ?? { a, b, costs: new Set() };
      edge.costs.add(cost);
      found.set(key, edge);
    }
  }
  return [...found.values()];
}

export async function update() {
  const rows = await query('petrel.router.node');
  const self = rows.find((r) => r.cost === 0 && r.next_hop === null);
  const reachable = rows.filter((r) => r.reachable);
  const shown = new Set(reachable.map((r) => r.id));
  const places = layout([...shown].sort());
  const lines = edges(reachable, shown).map((edge) => {
    const p = places.get(edge.a);
    const q = places.get(edge.b);
    const cost = [...edge.costs].join('/');
    return s('g', { class: 'link', dataset: { link: `${edge.a}|${edge.b}`, cost } },
      s('line', { x1: p.x, y1: p.y, x2: q.x, y2: q.y }),
      s('text', { class: 'cost', x: (p.x + q.x) / 2 + 4, y: (p.y + q.y) / 2 - 4 }, cost));
  });
  const circles = [...shown].sort().map((id) => {
    const p = places.get(id);
    return s('g', { class: self && id === self.id ? 'router self' : 'router', dataset: { router: id } },
      s('title', {}, self && id === self.id ? `${id} (this router)` : id),
      s('circle', { cx: p.x, cy: p.y, r: RADIUS }),
      s('text', { class: 'id', x: p.x, y: p.y }, id));
  });
  picture.replaceChildren(s('svg', {
    viewBox: `0 0 ${SIZE} ${SIZE}`, role: 'img', id: 'network-graph',
    'aria-label': `${shown.size} routers and the links between them`,
  }, lines, circles));
  nodes.replaceChildren(table([
    { key: 'id', label: 'Router' },
    { key: 'reachable', label: 'Reachable', format: yesNo },
    { key: 'cost', label: 'Path cost', num: true },
    { key: 'next_hop', label: 'Next hop', format: (v, row) => (row.cost === 0 ? '(this router)' : v ?? '–') },
    { key: 'link_costs', label: 'Links (cost)', format: (v) => Object.entries(v ?? {}).map(([p, c]) => `${p} (${c})`).join(', ') },
    { key: 'addresses', label: 'Addresses', num: true, format: num },
  ], rows, { id: 'nodes', key: 'id', empty: 'No routers known.' }));
}
