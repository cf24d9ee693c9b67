// The console's only way to the server: AMQP Management requests, sent as JSON to
// POST /api/management and answered by the server's $management node.

export class ManagementError extends Error {
  constructor(status, description) {
    super(`${status} ${description}`);
    this.status = status;
    this.description = description;
  }
}

const ENDPOINT = new URL('../api/management', document.baseURI).pathname;

/** Send one request (its application-properties and body); resolve to the reply body. */
export async function request(properties, body = null) {
  const response = await fetch(ENDPOINT, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    credentials: 'same-origin',
    cache: 'no-store',
    body: JSON.stringify({ application_properties: properties, body }),
  });
  if (!response.ok) {
    let text = await response.text();
    try { text = JSON.parse(text).error ?? text; } catch { /* a plain-text refusal */ }
    throw new ManagementError(response.status, text.trim());
  }
  const reply = await response.json();
  const status = reply.application_properties.statusCode;
  if (status < 200 || status >= 300) {
    throw new ManagementError(status, reply.application_properties.statusDescription);
  }
  return reply.body;
}

const PAGE = 1000;

/** Every entity of one type, as objects (QUERY, paged). */
export async function query(entityType, attributeNames = []) {
  const rows = [];
  for (let offset = 0; ; offset += PAGE) {
    const body = await request(
      { operation: 'QUERY', type: 'org.amqp.management', name: 'self', entityType, offset, count: PAGE },
      { attributeNames },
    );
    for (const values of body.results) {
      const row = {};
      body.attributeNames.forEach((name, index) => { row[name] = values[index]; });
      rows.push(row);
    }
    if (body.results.length < PAGE) return rows;
  }
}

/** The entity types the node offers (GET-TYPES): name to the types it extends. */
export function types() {
  return request({ operation: 'GET-TYPES', type: 'org.amqp.management', name: 'self' });
}

/** An operation on one entity, named by its identity. */
export function call(operation, type, identity, args = {}) {
  return request({ operation, type, identity, ...args });
}
