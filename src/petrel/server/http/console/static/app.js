// The console's shell: finds out what kind of server this is, shows one view at a
// time (from the URL's #fragment), reads its figures again every few seconds, and
// offers the views a dialog, a notice line and per-counter rates.

import { ManagementError, types } from './api.js';
import { h } from './dom.js';
import * as overview from './overview.js';
import * as queues from './queues.js';
import * as addresses from './addresses.js';
import * as connections from './connections.js';
import * as network from './network.js';

const VIEWS = { overview, queues, addresses, connections, network };
const params = new URLSearchParams(location.search);
// Milliseconds between reads (?refresh=MS; at least 200).
const REFRESH_MS = Math.max(200, Number(params.get('refresh')) || 2000);
const HISTORY = 60;

const counters = new Map();
const histories = new Map();

const ctx = {
  kind: null,
  view: document.getElementById('view'),

  /** Per-second rate of a counter since the previous read (null at the first). */
  rate(key, value) {
    const now = performance.now();
    const last = counters.get(key);
    counters.set(key, { value, now });
    if (!last || value === null || value === undefined || now <= last.now) return null;
    return Math.max(0, (value - last.value) * 1000 / (now - last.now));
  },

  /** The last values of a series, the new one included. */
  history(key, value) {
    const values = histories.get(key) ?? [];
    if (value !== null && value !== undefined) values.push(value);
    if (values.length > HISTORY) values.shift();
    histories.set(key, values);
    return values;
  },

  notify(message, error = false) {
    const notice = document.getElementById('notice');
    notice.textContent = message;
    notice.className = error ? 'error' : '';
    notice.hidden = false;
  },

  failed(action, error) {
    const detail = error instanceof ManagementError ? error.description : String(error);
    ctx.notify(`${action} failed: ${detail}`, true);
  },

  /**
   * A modal question. fields: [{name, label, value, required, placeholder, list}];
   * resolves to the fields' values (an object), or null when cancelled.
   */
  ask(title, message, fields = [], ok = 'OK', danger = false) {
    const dialog = document.getElementById('dialog');
    document.getElementById('dialog-title').textContent = title;
    document.getElementById('dialog-text').textContent = message;
    const okButton = document.getElementById('dialog-ok');
    okButton.textContent = ok;
    okButton.className = danger ? 'primary danger' : 'primary';
    const box = document.getElementById('dialog-fields');
    box.replaceChildren(...fields.map((f) => h('label', {},
      h('span', {}, f.label),
      h('input', { name: f.name, value: f.value ?? '', required: f.required, placeholder: f.placeholder, list: f.list, autocomplete: 'off' }))));
    return new Promise((resolve) => {
      dialog.addEventListener('close', () => {
        if (dialog.returnValue !== 'ok') { resolve(null); return; }
        const values = {};
        for (const input of box.querySelectorAll('input')) values[input.name] = input.value;
        resolve(values);
      }, { once: true });
      dialog.returnValue = '';
      dialog.showModal();
      (box.querySelector('input') ?? okButton).focus();
    });
  },

  /** Read the current view again now. */
  refresh: () => refresh(),
};

let current = null;
let busy = false;
let again = false;

function chosen() {
  const name = location.hash.replace(/^#/, '') || 'overview';
  const view = VIEWS[name];
  return view && view.kinds.includes(ctx.kind) ? name : 'overview';
}

async function refresh() {
  if (busy) { again = true; return; }
  busy = true;
  try {
    const name = chosen();
    if (name !== current) {
      current = name;
      for (const link of document.querySelectorAll('nav a')) {
        if (link.dataset.view === name) link.setAttribute('aria-current', 'page');
        else link.removeAttribute('aria-current');
      }
      ctx.view.replaceChildren();
      VIEWS[name].mount(ctx);
      document.title = `${VIEWS[name].title} · Petrel ${ctx.kind}`;
    }
    await VIEWS[name].update(ctx);
    document.getElementById('updated').textContent = `read ${new Date().toLocaleTimeString('en-GB')}`;
    document.body.dataset.updated = String(Number(document.body.dataset.updated ?? 0) + 1);
  } catch (error) {
    ctx.failed('Reading the server', error);
  } finally {
    busy = false;
    if (again) { again = false; refresh(); }
  }
}

async function start() {
  try {
    const known = await types();
    ctx.kind = 'petrel.router' in known ? 'router' : 'broker';
  } catch (error) {
    ctx.view.replaceChildren(h('p', {}, 'The management node did not answer: ',
      error instanceof ManagementError ? error.description : String(error)));
    return;
  }
  document.body.dataset.kind = ctx.kind;
  document.getElementById('server-kind').textContent = ctx.kind;
  for (const link of document.querySelectorAll('nav a[data-kind]')) {
    link.hidden = link.dataset.kind !== ctx.kind;
  }
  window.addEventListener('hashchange', () => { document.getElementById('notice').hidden = true; refresh(); });
  document.getElementById('refresh').addEventListener('click', () => refresh());
  setInterval(() => {
    if (!document.getElementById('pause').checked && !document.getElementById('dialog').open) refresh();
  }, REFRESH_MS);
  await refresh();
}

start();
