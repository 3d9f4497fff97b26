// The fleet console: the page the hub serves at /console (issue 19).
//
// It reads the hub's own API with a hub token (a viewer reads; an admin also acts: it retries
// the webhook dead letters) and refreshes every few seconds. It computes no money and holds no
// data: every figure is the hub's, shown as the hub answered it. Nothing is fetched from
// anywhere but the hub (the page's Content-Security-Policy says so too).

const TOKEN_KEY = 'fusion.console.token';
const REFRESH_MS = 3000;
const CHART_DAYS = 14;

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
  }
}

const state = {
  token: localStorage.getItem(TOKEN_KEY),
  admin: false,
  timer: null,
};

async function api(method, path, body) {
  const headers = { Accept: 'application/json', Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text };
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// ---------------------------------------------------------------- small DOM helpers

/** An element with text or children; `attrs` set as properties (className, title, …). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, attrs);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c ?? '')));
  return node;
}

const num = (v) => el('td', { className: 'n' }, v);

function fillTable(id, rows, empty) {
  const body = $(id).tBodies[0];
  const cols = $(id).tHead.rows[0].cells.length;
  body.replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { colSpan: cols, className: 'muted' }, empty))]));
}

/** An amount as the hub gave it, with its currency (two places: display only). */
function money(amount, currency) {
  if (amount === null || amount === undefined) return '';
  const n = Number(amount);
  return `${currency || ''} ${Number.isFinite(n) ? n.toFixed(2) : amount}`.trim();
}

const short = (id) => (id && id.length > 14 ? `${id.slice(0, 10)}…` : id || '');

function ago(ms) {
  if (ms === null || ms === undefined) return 'never (since the hub started)';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 90) return `${s} s ago`;
  const m = Math.round(s / 60);
  return m < 90 ? `${m} min ago` : `${Math.round(m / 60)} h ago`;
}

// ---------------------------------------------------------------- sign-in

function show(signedIn) {
  $('signin').hidden = signedIn;
  $('console').hidden = !signedIn;
  $('sign-out').hidden = !signedIn;
}

async function signIn(token) {
  state.token = token;
  try {
    await api('GET', '/fleet/stores');
  } catch (e) {
    state.token = null;
    throw e;
  }
  // An admin token may list the hub's tokens; a viewer's is refused with 403.
  try {
    await api('GET', '/tokens');
    state.admin = true;
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 403)) throw e;
    state.admin = false;
  }
  localStorage.setItem(TOKEN_KEY, token);
  const role = $('bar-role');
  role.textContent = state.admin ? 'Admin' : 'Viewer (read only)';
  role.dataset.state = 'ok';
  $('dlq-retry').disabled = !state.admin;
  $('dlq-retry').title = state.admin ? '' : 'Retrying needs an admin token';
  show(true);
  await refresh();
  clearInterval(state.timer);
  state.timer = setInterval(refresh, REFRESH_MS);
}

function signOut() {
  clearInterval(state.timer);
  localStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.admin = false;
  $('bar-role').textContent = 'Not signed in';
  $('bar-role').dataset.state = 'unknown';
  show(false);
  $('signin-token').value = '';
  $('signin-token').focus();
}

// ---------------------------------------------------------------- sections

/** Sales as an SVG bar chart: one group per day (the last CHART_DAYS with sales), a bar per store. */
function drawSales(rows) {
  const chart = $('sales-chart');
  const days = [...new Set(rows.map((r) => r.day))].sort().slice(-CHART_DAYS);
  const stores = [...new Set(rows.map((r) => r.storeId))].sort();
  const currencies = [...new Set(rows.map((r) => r.currency))];
  if (!days.length) {
    chart.replaceChildren(el('p', { className: 'muted' }, 'No sales yet.'));
    return;
  }
  // One scale per currency would mislead with bars side by side: chart the first currency and
  // say so when there are more.
  const currency = currencies.sort()[0];
  const shown = rows.filter((r) => r.currency === currency && days.includes(r.day));
  const max = Math.max(...shown.map((r) => Number(r.total)), 0) || 1;
  const ns = 'http://www.w3.org/2000/svg';
  const W = 720;
  const H = 220;
  const pad = { l: 56, r: 8, t: 12, b: 40 };
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('class', 'chart');
  const add = (tag, attrs, text) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    svg.append(n);
    return n;
  };
  const plotW = W - pad.l - pad.r;
  const plotH = H - pad.t - pad.b;
  for (const f of [0, 0.5, 1]) {
    const y = pad.t + plotH * (1 - f);
    add('line', { x1: pad.l, x2: W - pad.r, y1: y, y2: y, class: 'grid' });
    add('text', { x: pad.l - 6, y: y + 4, class: 'axis', 'text-anchor': 'end' }, (max * f).toFixed(0));
  }
  const groupW = plotW / days.length;
  const barW = Math.max(4, (groupW * 0.8) / stores.length);
  days.forEach((day, i) => {
    const x0 = pad.l + i * groupW + groupW * 0.1;
    stores.forEach((store, j) => {
      const r = shown.find((s) => s.day === day && s.storeId === store);
      if (!r) return;
      const h = (Number(r.total) / max) * plotH;
      const bar = add('rect', {
        x: x0 + j * barW, y: pad.t + plotH - h, width: barW - 1, height: Math.max(h, 1),
        class: `bar s${j % 6}`, 'data-store': store, 'data-day': day,
      });
      const title = document.createElementNS(ns, 'title');
      title.textContent = `${store} ${day}: ${r.orders} orders, ${money(r.total, r.currency)}`;
      bar.append(title);
    });
    add('text', { x: x0 + (groupW * 0.8) / 2, y: H - pad.b + 16, class: 'axis', 'text-anchor': 'middle' }, day.slice(5));
  });
  const legend = el('p', { className: 'legend' },
    ...stores.map((s, j) => el('span', { className: `key s${j % 6}` }, s)),
    currencies.length > 1 ? el('span', { className: 'muted' }, ` (chart in ${currency}; the table has every currency)`) : '');
  chart.replaceChildren(svg, legend);
}

function renderSales(rows) {
  drawSales(rows);
  const sorted = [...rows].sort((a, b) => (b.day.localeCompare(a.day) || a.storeId.localeCompare(b.storeId)));
  fillTable('sales-table', sorted.map((r) => el('tr', {},
    el('td', {}, r.day), el('td', {}, r.storeId), num(r.orders), num(money(r.total, r.currency)))), 'No sales yet.');
}

function renderTills(status, stores) {
  const journals = new Map();
  // A till's journal is keyed by its origin (node id); its link by the endpoint it syncs with.
  for (const s of stores) for (const j of s.journals) if (j.endpointId) journals.set(j.endpointId, j);
  const rows = [...status.peers]
    .sort((a, b) => a.storeId.localeCompare(b.storeId) || a.nodeId.localeCompare(b.nodeId))
    .map((p) => {
      const j = journals.get(p.nodeId) || { events: 0, verifiedUpTo: 0 };
      const link = el('span', { className: 'pill' }, p.connected ? 'online' : 'offline');
      link.dataset.state = p.connected ? 'ok' : 'bad';
      const tr = el('tr', {},
        el('td', {}, p.storeId),
        el('td', { title: `endpoint ${p.nodeId}${j.nodeId ? `, journal ${j.nodeId}` : ''}` }, short(j.nodeId || p.nodeId)),
        el('td', {}, link),
        el('td', {}, ago(p.lastContactMs)),
        num(j.events),
        num(j.verifiedUpTo === j.events ? `${j.verifiedUpTo} (all)` : `${j.verifiedUpTo} of ${j.events}`),
        el('td', {}, j.latestAt ? `${j.latestAt.slice(0, 19).replace('T', ' ')} (${ago(Date.parse(j.latestAt))})` : '—'));
      tr.dataset.till = p.nodeId;
      tr.dataset.connected = String(p.connected);
      return tr;
    });
  fillTable('tills-table', rows, 'No till enrolled yet (fusion hub enroll).');
  const online = status.peers.filter((p) => p.connected).length;
  $('tills-summary').textContent = `${stores.length} store${stores.length === 1 ? '' : 's'}, ` +
    `${online} of ${status.peers.length} till${status.peers.length === 1 ? '' : 's'} online`;
}

function renderZ(sessions) {
  const sorted = [...sessions].sort((a, b) => b.day.localeCompare(a.day) || a.storeId.localeCompare(b.storeId) || (a.z || 0) - (b.z || 0));
  fillTable('z-table', sorted.map((s) => el('tr', {},
    el('td', {}, s.day), el('td', {}, s.storeId), el('td', { title: s.till }, short(s.till)),
    num(s.z), num(s.totals.sales), num(money(s.totals.salesTotal, s.currency)),
    num(s.variance === undefined ? '' : money(s.variance, s.currency)))), 'No drawer closed yet.');
}

function renderDelivery(lag, dlq) {
  const exp = lag.export; // {enabled, behind, brokers, exported, lastError}
  const facts = exp.enabled
    ? [
      ['Kafka export', `on (${exp.brokers})`],
      ['Behind the log', `${exp.behind} events`],
      ['Exported', `${exp.exported} events since the hub started`],
    ]
    : [['Kafka export', 'off (no brokers configured)']];
  if (exp.lastError) facts.push(['Last error', exp.lastError]);
  $('export').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  $('export').dataset.behind = String(exp.behind);
  fillTable('hooks-table', lag.webhooks.map((w) => el('tr', {},
    el('td', { title: w.url }, w.name), num(w.behind), num(w.delivered), num(w.deadLetters),
    el('td', { className: 'wrap' }, w.lastError || ''))), 'No webhook subscription configured.');
  fillTable('dlq-table', dlq.map((d) => el('tr', {},
    el('td', {}, d.subscription), el('td', {}, d.topic), el('td', {}, d.key), num(d.attempts),
    el('td', {}, ago(Date.parse(d.failedAt))), el('td', { className: 'wrap' }, d.lastError))), 'No dead letters.');
  $('dlq-table').dataset.count = String(dlq.length);
}

function renderStock(rows) {
  const filter = $('stock-filter').value.trim().toLowerCase();
  const shown = rows.filter((r) => !filter || r.sku.toLowerCase().includes(filter) || r.storeId.toLowerCase().includes(filter));
  fillTable('stock-table', shown.map((r) => {
    const hub = r.holders.find((h) => h.origin === r.hubHolder);
    const tills = r.holders.filter((h) => h.origin !== r.hubHolder);
    const held = tills.reduce((n, h) => n + h.held, 0);
    const reserved = tills.reduce((n, h) => n + h.reserved, 0);
    return el('tr', {},
      // Headroom: what the tills may still sell alone (their rights net of what is reserved).
      el('td', {}, r.storeId), el('td', {}, r.sku), num(held), num(reserved),
      num(hub ? hub.held : 0), num(r.inTransit),
      el('td', { className: 'wrap' }, tills.map((h) => `${short(h.origin)} ${h.held}`).join(', ')));
  }), rows.length ? 'No sku matches.' : 'No stock recorded yet.');
}

function renderCampaigns(campaigns, shared) {
  const seats = new Map(shared.map((s) => [s.campaign.id, s]));
  fillTable('campaigns-table', campaigns.map((c) => {
    const s = seats.get(c.id);
    const seatText = s
      ? `shared: hub holds ${s.hubSeats}, ${s.holders.length} holder${s.holders.length === 1 ? '' : 's'}` +
        (s.decided ? `, decided ${s.decided}` : '')
      : `at ${short(c.origin)}`;
    return el('tr', {},
      el('td', { title: c.id }, short(c.id)), el('td', {}, c.sku), el('td', {}, c.status),
      num(c.actualParticipants), num(`${c.minParticipants}–${c.maxParticipants}`),
      el('td', {}, c.endTime.slice(0, 16).replace('T', ' ')), el('td', {}, seatText));
  }), 'No campaigns.');
}

// ---------------------------------------------------------------- refresh

let stockRows = [];

async function refresh() {
  if (!state.token) return;
  try {
    const [sales, status, stores, sessions, lag, dlq, escrow, campaigns, shared] = await Promise.all([
      api('GET', '/fleet/sales'),
      api('GET', '/sync/status'),
      api('GET', '/fleet/stores'),
      api('GET', '/fleet/sessions'),
      api('GET', '/fleet/lag'),
      api('GET', '/webhooks/dlq'),
      api('GET', '/escrow'),
      api('GET', '/campaigns'),
      api('GET', '/escrow/campaigns'),
    ]);
    renderSales(sales);
    renderTills(status, stores);
    renderZ(sessions);
    renderDelivery(lag, dlq);
    stockRows = escrow;
    renderStock(stockRows);
    renderCampaigns(campaigns, shared);
    $('bar-error').textContent = '';
    $('bar-updated').textContent = `Updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.loaded = 'yes';
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      signOut();
      $('signin-error').textContent = 'The hub no longer accepts this token.';
      return;
    }
    $('bar-error').textContent = e instanceof ApiError ? e.message : 'The hub is not answering.';
  }
}

async function retryDeadLetters() {
  const button = $('dlq-retry');
  button.disabled = true;
  $('dlq-result').textContent = 'Retrying…';
  try {
    const r = await api('POST', '/webhooks/dlq/retry', {});
    $('dlq-result').textContent = `Attempted ${r.attempted}, delivered ${r.delivered}, remaining ${r.remaining}`;
    await refresh();
  } catch (e) {
    $('dlq-result').textContent = e.message;
  } finally {
    button.disabled = !state.admin;
  }
}

// ---------------------------------------------------------------- wiring

$('signin-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('signin-error').textContent = '';
  try {
    await signIn($('signin-token').value.trim());
  } catch (e) {
    $('signin-error').textContent = e instanceof ApiError && e.status === 401 ? 'Not a token of this hub.' : e.message;
  }
});
$('sign-out').addEventListener('click', signOut);
$('dlq-retry').addEventListener('click', retryDeadLetters);
$('stock-filter').addEventListener('input', () => renderStock(stockRows));

if (state.token) {
  signIn(state.token).catch(() => signOut());
} else {
  show(false);
  $('signin-token').focus();
}
