// Small DOM helpers: elements are built, never parsed from strings, so names that
// clients choose (queues, containers, message bodies) are shown as text only.

const SVG = 'http://www.w3.org/2000/svg';

/** An element: h('td', {class: 'num', dataset: {col: 'depth'}}, 'text', child, ...). */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  return fill(element, attrs, children);
}

/** An SVG element, like h(). */
export function s(tag, attrs = {}, ...children) {
  return fill(document.createElementNS(SVG, tag), attrs, children);
}

function fill(element, attrs, children) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'dataset') Object.assign(element.dataset, value);
    else if (key.startsWith('on')) element.addEventListener(key.slice(2), value);
    else element.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** A number for people: 12 345, 1.2 k/s. */
export function num(value) {
  if (value === null || value === undefined) return '–';
  if (typeof value !== 'number') return String(value);
  return Number.isInteger(value) ? value.toLocaleString('en-US') : value.toFixed(1);
}

export function rate(value) {
  if (value === null || value === undefined) return '–';
  return value < 10 ? value.toFixed(1) : Math.round(value).toLocaleString('en-US');
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** A management value (JSON from the server) as text: binary as UTF-8 when it is. */
export function text(value) {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && !Array.isArray(value) && '$binary' in value) {
    const bytes = Uint8Array.from(atob(value.$binary), (c) => c.charCodeAt(0));
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      return `binary, ${bytes.length} bytes: ${[...bytes.slice(0, 32)].map((b) => b.toString(16).padStart(2, '0')).join(' ')}${bytes.length > 32 ? ' …' : ''}`;
    }
  }
  return JSON.stringify(value);
}

/**
 * A table. columns: [{key, label, num?, format?(value, row)}]; rows: objects;
 * options: {id, key (row attribute naming it), actions(row) -> [elements], empty}.
 */
export function table(columns, rows, options = {}) {
  const head = h('tr', {}, columns.map((c) => h('th', { class: c.num ? 'num' : null, scope: 'col' }, c.label)));
  if (options.actions) head.append(h('th', { scope: 'col' }, 'Actions'));
  const body = rows.length === 0
    ? [h('tr', {}, h('td', { class: 'empty', colspan: columns.length + (options.actions ? 1 : 0) }, options.empty ?? 'None.'))]
    : rows.map((row) => h(
      'tr',
      { dataset: { name: row[options.key ?? 'name'] ?? '' } },
      columns.map((c) => {
        const value = row[c.key];
        const shown = c.format ? c.format(value, row) : (c.num ? num(value) : text(value));
        return h('td', { class: c.num ? 'num' : null, dataset: { col: c.key } }, shown);
      }),
      options.actions ? h('td', { class: 'actions' }, options.actions(row)) : null,
    ));
  return h('table', { id: options.id, dataset: { testid: options.id } }, h('thead', {}, head), h('tbody', {}, body));
}

export function card(label, value, id, extra = null) {
  return h('div', { class: 'card', id: id ? `card-${id}` : null, dataset: { card: id } },
    h('div', { class: 'label' }, label), h('div', { class: 'value' }, value), extra);
}

/** A small line of the last values. */
export function sparkline(values) {
  const width = 120;
  const height = 28;
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - (v / max) * (height - 4)).toFixed(1)}`);
  return s('svg', { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', 'aria-hidden': 'true' },
    s('polyline', { points: points.join(' ') }));
}

export function yesNo(value) {
  return h('span', { class: `tag ${value ? 'yes' : 'no'}` }, value ? 'yes' : 'no');
}
