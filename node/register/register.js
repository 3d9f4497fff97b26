// The register: the till screen the node serves at /register (issue 19).
//
// Every sale goes straight to this node's API and the screen says "Paid" only once the node
// answered, after its durable commit; the browser keeps nothing a sale needs (the till token it
// was paired with and the signed-in member's token only). The screen computes no money: the
// lines, promotions, tax and total are the node's (POST /orders/quote, then POST /orders), the
// change and what a split tender still owes come back with each payment. Nothing is fetched
// from anywhere but this node (the page's Content-Security-Policy says so too).

const TILL_KEY = 'fusion.register.till';
const STAFF_KEY = 'fusion.register.staff';
const STATUS_EVERY_MS = 2000;

const $ = (id) => document.getElementById(id);

/** Opens a dialog afresh: a close by Escape then says '' (not the last close's value). */
function open(dialog) {
  dialog.returnValue = '';
  dialog.showModal();
}

/** A node answer that is not a 2xx: its status and the error body (`error`, `message`, `field`). */
class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

const state = {
  till: localStorage.getItem(TILL_KEY),
  staff: readStaff(),
  members: [],
  currency: null,
  storeName: '',
  cart: [], // {sku, name, quantity, price, available, discount}
  discount: null, // the whole order's {percent|amount, reason}
  approval: null, // a manager's {staff, pin}, given for this sale
  quote: null, // the node's pricing of the cart
  order: null, // the order placed for payment
  due: null, // what the placed order still owes (the node's figure)
  change: [], // change given by the sale's cash payments (the node's figures)
  session: null,
  quoting: 0,
};

function readStaff() {
  try {
    const s = JSON.parse(sessionStorage.getItem(STAFF_KEY) || 'null');
    return s && Date.parse(s.expiresAt) > Date.now() ? s : null;
  } catch {
    return null;
  }
}

async function api(method, path, body, token) {
  const headers = { Accept: 'application/json' };
  const bearer = token || (state.staff && state.staff.token) || state.till;
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
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
  if (res.status === 401 && state.staff && !token) {
    signedOut('Your sign-in ended: sign in again.');
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** Text of a node page (a receipt as HTML) with the bearer. */
async function fetchText(path) {
  const res = await fetch(path, { headers: { Authorization: `Bearer ${state.staff.token}` } });
  if (!res.ok) throw new ApiError(res.status, null);
  return res.text();
}

/** A decimal from the node, printed as it came (two places), with the currency. */
function money(amount, currency = state.currency) {
  if (amount === null || amount === undefined) return '';
  const n = Number(amount);
  return `${currency || ''} ${Number.isFinite(n) ? n.toFixed(2) : amount}`.trim();
}

function show(screen) {
  for (const id of ['pair', 'signin', 'sell']) $(id).hidden = id !== screen;
  $('sign-out').hidden = screen !== 'sell';
  if (screen === 'sell') focusScan();
}

function focusScan() {
  if (!document.querySelector('dialog[open]')) $('scan').focus();
}

function say(id, text) {
  $(id).textContent = text || '';
}

function errorText(e) {
  if (e instanceof ApiError) {
    const field = e.body.field ? ` (${e.body.field})` : '';
    return `${e.body.message || e.message}${field}`;
  }
  return 'The till does not answer: is its node running?';
}

// ---------------------------------------------------------------- pairing and sign-in

async function start() {
  wireKeypads();
  wire();
  if (!state.till) return show('pair');
  try {
    await api('GET', '/settings', undefined, state.till);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      localStorage.removeItem(TILL_KEY);
      state.till = null;
      say('pair-error', 'This screen’s till token no longer works: pair it again.');
      return show('pair');
    }
  }
  await loadStore();
  if (state.staff) return enterSell();
  await showSignIn();
}

async function pair(event) {
  event.preventDefault();
  const token = $('pair-token').value.trim();
  try {
    await api('GET', '/settings', undefined, token);
  } catch (e) {
    return say('pair-error', e instanceof ApiError && e.status === 401 ? 'Not a token of this till.' : errorText(e));
  }
  localStorage.setItem(TILL_KEY, token);
  state.till = token;
  $('pair-token').value = '';
  await loadStore();
  refreshStatus();
  await showSignIn();
}

async function loadStore() {
  try {
    const settings = await api('GET', '/settings', undefined, state.till);
    state.storeName = settings.name || settings.storeId || '';
    say('status-store', state.storeName);
  } catch {
    /* the status bar says what is wrong */
  }
  try {
    // The till's own receipt printer, when its node has one (`--printer`).
    const printer = await api('GET', '/printer', undefined, state.till);
    $('receipt-printer').hidden = !printer.configured;
    $('receipt-printer').title = printer.printer || '';
  } catch {
    $('receipt-printer').hidden = true;
  }
  try {
    const first = await api('GET', '/products?limit=1', undefined, state.till);
    state.currency = state.currency || (first[0] && first[0].currency) || 'USD';
  } catch {
    state.currency = state.currency || 'USD';
  }
}

async function loadMembers() {
  state.members = (await api('GET', '/staff', undefined, state.till)).filter((m) => m.active);
  const fill = (select, members) => {
    select.replaceChildren(...members.map((m) => new Option(`${m.name} (${m.role})`, m.id)));
  };
  fill($('signin-staff'), state.members);
  fill($('approval-staff'), state.members.filter((m) => m.role === 'manager' || m.role === 'admin'));
}

async function showSignIn() {
  show('signin');
  try {
    await loadMembers();
  } catch (e) {
    say('signin-error', errorText(e));
  }
  $('signin-pin').value = '';
  $('signin-pin').focus();
}

async function signIn(event) {
  event.preventDefault();
  const staff = $('signin-staff').value;
  const pin = $('signin-pin').value;
  $('signin-pin').value = '';
  try {
    const signed = await api('POST', '/staff/sign-in', { staff, pin }, state.till);
    state.staff = signed;
    sessionStorage.setItem(STAFF_KEY, JSON.stringify(signed));
    say('signin-error', '');
    await enterSell();
  } catch (e) {
    say('signin-error', e instanceof ApiError && e.status === 429
      ? 'Too many wrong PINs: this member is locked at this till for a while.'
      : errorText(e));
    $('signin-pin').focus();
  }
}

async function signOut() {
  try {
    await api('POST', '/staff/sign-out', {});
  } catch {
    /* signed out here either way */
  }
  signedOut('');
}

function signedOut(message) {
  state.staff = null;
  sessionStorage.removeItem(STAFF_KEY);
  say('status-staff', '');
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
  say('signin-error', message);
  showSignIn();
}

async function enterSell() {
  say('status-staff', `${state.staff.staff.name}`);
  show('sell');
  renderCart();
  await refreshSession();
}

// ---------------------------------------------------------------- the sale

/** The order body of the cart, as POST /orders and POST /orders/quote take it. */
function orderBody() {
  const body = {
    customerId: 'walk-in',
    currency: state.currency,
    items: state.cart.map((l) => {
      const item = { sku: l.sku, quantity: l.quantity };
      if (l.discount) item.discount = l.discount;
      if (l.override) {
        item.price = l.override.price;
        if (l.override.reason) item.overrideReason = l.override.reason;
      }
      return item;
    }),
  };
  if (state.discount) body.discount = state.discount;
  if (state.approval) body.approval = state.approval;
  return body;
}

async function scan(event) {
  event.preventDefault();
  const text = $('scan').value.trim();
  if (!text) return;
  if (/^\S+$/.test(text)) {
    try {
      const product = await api('GET', `/products/by-sku/${encodeURIComponent(text)}`);
      $('scan').value = '';
      $('results').replaceChildren();
      return add(product);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) return say('sale-error', errorText(e));
    }
  }
  search(text);
}

async function search(text) {
  try {
    const found = await api('GET', `/products?q=${encodeURIComponent(text)}&limit=20`);
    const list = $('results');
    list.replaceChildren(...found.map((p) => {
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = `${p.name} · ${p.sku} · ${money(p.price, p.currency)}`;
      b.addEventListener('click', () => {
        list.replaceChildren();
        $('scan').value = '';
        add(p);
      });
      li.append(b);
      return li;
    }));
    say('sale-error', found.length ? '' : `Nothing found for “${text}”.`);
    if (found.length) list.querySelector('button').focus();
  } catch (e) {
    say('sale-error', errorText(e));
  }
}

function add(product) {
  if (state.order) return say('sale-error', 'This sale is being paid: finish or void it first.');
  const line = state.cart.find((l) => l.sku === product.sku && !l.discount);
  if (line) {
    line.quantity += 1;
  } else {
    state.cart.push({
      sku: product.sku,
      name: product.name,
      quantity: 1,
      price: product.price,
      available: product.inventory,
      discount: null,
    });
  }
  say('sale-error', '');
  renderCart();
  requote();
  focusScan();
}

function setQuantity(index, quantity) {
  if (state.order) return;
  if (quantity <= 0) state.cart.splice(index, 1);
  else state.cart[index].quantity = quantity;
  renderCart();
  requote();
}

/** Ask the node what the cart costs: lines, promotions, tax, total. */
async function requote() {
  const ticket = ++state.quoting;
  if (!state.cart.length) {
    state.quote = null;
    renderCart();
    return;
  }
  try {
    const quote = await api('POST', '/orders/quote', orderBody());
    if (ticket !== state.quoting) return;
    state.quote = quote;
    say('sale-error', '');
  } catch (e) {
    if (ticket !== state.quoting) return;
    state.quote = null;
    if (needsApproval(e)) {
      const approved = await askApproval(e.body.message);
      if (approved) return requote();
      undoLastDiscount();
      return requote();
    }
    say('sale-error', errorText(e));
  }
  renderCart();
}

function needsApproval(e) {
  return e instanceof ApiError && e.status === 403
    && /requires_approval$|^approval_|^pin_invalid$/.test(e.body.error || '');
}

/** Undoes the last discount or price override: the manager declined to approve it. */
let undoLast = null;
function undoLastDiscount() {
  if (undoLast) undoLast();
  undoLast = null;
}

function renderCart() {
  const body = $('cart').querySelector('tbody');
  const priced = state.quote ? state.quote.items : [];
  body.replaceChildren(...state.cart.map((line, i) => {
    const tr = document.createElement('tr');
    const sold = priced[i];
    const name = document.createElement('td');
    name.textContent = line.name;
    const meta = document.createElement('small');
    const left = line.available === undefined ? '' : ` · ${line.available} on this till`;
    meta.textContent = `${line.sku}${left}${line.discount ? ' · discount' : ''}${line.override ? ' · price override' : ''}`;
    name.append(document.createElement('br'), meta);
    const qty = document.createElement('td');
    qty.className = 'n';
    const input = document.createElement('input');
    input.type = 'number';
    input.min = '0';
    input.value = String(line.quantity);
    input.setAttribute('aria-label', `Quantity of ${line.name}`);
    input.addEventListener('change', () => setQuantity(i, Math.max(0, parseInt(input.value, 10) || 0)));
    qty.append(input);
    const price = document.createElement('td');
    price.className = 'n';
    // The unit price the node priced the line at (an approved override shows as such).
    price.textContent = money(sold ? sold.price : line.price);
    if (line.override) price.title = `Catalog ${money(line.price)}`;
    const total = document.createElement('td');
    total.className = 'n';
    total.textContent = sold ? money(sold.paid) : '…';
    const remove = document.createElement('td');
    const x = document.createElement('button');
    x.type = 'button';
    x.textContent = '✕';
    x.setAttribute('aria-label', `Remove ${line.name}`);
    x.addEventListener('click', () => setQuantity(i, 0));
    remove.append(x);
    tr.append(name, qty, price, total, remove);
    return tr;
  }));
  $('cart-empty').hidden = state.cart.length > 0;
  const totals = $('totals');
  const rows = [];
  const q = state.quote;
  if (q) {
    rows.push(['Subtotal', money(q.subtotal)]);
    for (const p of q.promotions || []) rows.push([p.name || 'Promotion', `− ${money(p.amount)}`]);
    if (q.discount) rows.push(['Discount', `− ${money(q.discount.amount)}`]);
    for (const t of q.taxes || []) {
      rows.push([`${q.taxIncluded ? 'incl. ' : ''}Tax ${t.class} ${t.rate}%`, money(t.tax)]);
    }
    rows.push(['Total', money(q.total)]);
  }
  if (state.order && state.due !== null) rows.push(['Still due', money(state.due)]);
  totals.replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    if (k === 'Total' || k === 'Still due') dd.className = 'total';
    return [dt, dd];
  }));
}

function voidSale() {
  state.cart = [];
  state.discount = null;
  state.approval = null;
  state.quote = null;
  state.order = null;
  state.due = null;
  state.change = [];
  say('sale-error', '');
  renderCart();
  focusScan();
}

// ---------------------------------------------------------------- approvals and discounts

/** The manager's PIN prompt; resolves true once the node accepted it in the next request. */
function askApproval(reason) {
  const dialog = $('approval-dialog');
  state.approval = null;
  say('approval-reason', reason || 'A manager must approve this.');
  say('approval-error', '');
  $('approval-pin').value = '';
  return new Promise((resolve) => {
    dialog.onclose = () => {
      const ok = dialog.returnValue === 'ok';
      if (ok) state.approval = { staff: $('approval-staff').value, pin: $('approval-pin').value };
      $('approval-pin').value = '';
      resolve(ok);
      focusScan();
    };
    open(dialog);
    $('approval-pin').focus();
  });
}

function openDiscount() {
  if (!state.cart.length || state.order) return;
  const target = $('discount-target');
  target.replaceChildren(new Option('The whole sale', 'order'),
    ...state.cart.map((l, i) => new Option(l.name, String(i))));
  $('discount-percent').value = '';
  $('discount-amount').value = '';
  $('discount-reason').value = '';
  const dialog = $('discount-dialog');
  dialog.onclose = () => {
    const which = target.value;
    if (dialog.returnValue === 'remove') {
      if (which === 'order') state.discount = null;
      else state.cart[Number(which)].discount = null;
    } else if (dialog.returnValue === 'ok') {
      const percent = $('discount-percent').value;
      const amount = $('discount-amount').value;
      if (!percent && !amount) return focusScan();
      const discount = percent ? { percent: Number(percent) } : { amount: Number(amount) };
      const reason = $('discount-reason').value.trim();
      if (reason) discount.reason = reason;
      if (which === 'order') {
        state.discount = discount;
        undoLast = () => { state.discount = null; };
      } else {
        const line = state.cart[Number(which)];
        line.discount = discount;
        undoLast = () => { line.discount = null; };
      }
    } else {
      return focusScan();
    }
    renderCart();
    requote();
    focusScan();
  };
  open(dialog);
  $('discount-percent').focus();
}

/** A line sold at another unit price than the catalog's: the node asks for a manager. */
function openPrice() {
  if (!state.cart.length || state.order) return;
  const target = $('price-line');
  target.replaceChildren(...state.cart.map((l, i) => new Option(`${l.name} (${money(l.price)})`, String(i))));
  target.value = String(state.cart.length - 1);
  $('price-amount').value = '';
  $('price-reason').value = '';
  const dialog = $('price-dialog');
  dialog.onclose = () => {
    const line = state.cart[Number(target.value)];
    if (dialog.returnValue === 'remove') {
      line.override = null;
    } else if (dialog.returnValue === 'ok' && $('price-amount').value !== '') {
      line.override = { price: Number($('price-amount').value), reason: $('price-reason').value.trim() };
      undoLast = () => { line.override = null; };
    } else {
      return focusScan();
    }
    renderCart();
    requote();
    focusScan();
  };
  open(dialog);
  $('price-amount').focus();
}

// ---------------------------------------------------------------- tenders

async function openTender(kind) {
  if (!state.cart.length) return;
  if (!state.quote && !state.order) return say('sale-error', 'The node has not priced the sale yet.');
  const due = state.order ? state.due : state.quote.total;
  say('tender-title', { cash: 'Cash', card: 'Card', credit: 'Store credit' }[kind]);
  say('tender-due', money(due));
  say('tender-error', '');
  $('tender-amount').value = Number(due).toFixed(2);
  $('tender-given').value = '';
  $('tender-given-label').hidden = kind !== 'cash';
  $('tender-method-label').hidden = kind !== 'card';
  $('tender-account-label').hidden = kind !== 'credit';
  $('tender-method').value = 'pm_card_visa';
  say('tender-budget', kind === 'card' ? cardBudgetText() : '');
  const dialog = $('tender-dialog');
  dialog.dataset.kind = kind;
  open(dialog);
  (kind === 'cash' ? $('tender-given') : $('tender-amount')).focus();
}

async function takePayment(event) {
  event.preventDefault();
  const kind = $('tender-dialog').dataset.kind;
  const amount = Number($('tender-amount').value);
  const body = { amount, currency: state.currency };
  if (kind === 'cash') {
    body.paymentMethodId = 'cash';
    const given = $('tender-given').value;
    if (given) body.tendered = Number(given);
  } else if (kind === 'card') {
    body.paymentMethodId = $('tender-method').value.trim();
  } else {
    body.paymentMethodId = `store_credit:${$('tender-account').value.trim()}`;
  }
  try {
    if (!state.order) {
      state.order = await api('POST', '/orders', orderBody());
      state.approval = null;
      state.due = state.order.total;
    }
    body.orderId = state.order.id;
    const payment = await api('POST', '/payments', body);
    if (payment.changeDue && Number(payment.changeDue) > 0) state.change.push(payment.changeDue);
    state.due = payment.orderDue;
    $('tender-dialog').close();
    if (payment.status === 'offline_approved') {
      say('sale-error', 'Card approved offline: it is sent to the provider when the link is back.');
    }
    renderCart();
    if (Number(state.due) === 0) await paid();
    else say('sale-error', `Part paid: ${money(state.due)} still due. Take the next tender.`);
  } catch (e) {
    if (needsApproval(e) && !state.order) {
      $('tender-dialog').close();
      if (await askApproval(e.body.message)) return openTender(kind);
      return;
    }
    say('tender-error', e instanceof ApiError && e.status === 402
      ? `Declined: ${e.body.failureReason || e.body.message || 'the card was refused'}`
      : errorText(e));
  }
}

async function paid() {
  const order = state.order;
  say('receipt-title', `Paid · ${money(order.total)}`);
  say('receipt-change', state.change.length ? `Change ${state.change.map((c) => money(c)).join(' + ')}` : '');
  say('receipt-note', '');
  $('receipt-email').value = '';
  $('receipt-dialog').dataset.order = order.id;
  await showReceipt(`/orders/${order.id}/receipt?format=html`);
  open($('receipt-dialog'));
  $('receipt-dialog').querySelector('button[value=done]').focus();
  refreshStatus();
}

let receiptUrl = null;
async function showReceipt(path) {
  try {
    const html = await fetchText(path);
    if (receiptUrl) URL.revokeObjectURL(receiptUrl);
    receiptUrl = URL.createObjectURL(new Blob([html], { type: 'text/html' }));
    $('receipt-frame').src = receiptUrl;
  } catch (e) {
    say('receipt-note', errorText(e));
  }
}

async function printReceipt() {
  const id = $('receipt-dialog').dataset.order;
  try {
    const res = await fetch(`/orders/${id}/receipt/prints?format=html`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${state.staff.token}` },
    });
    if (!res.ok) throw new ApiError(res.status, null);
    const html = await res.text();
    if (receiptUrl) URL.revokeObjectURL(receiptUrl);
    receiptUrl = URL.createObjectURL(new Blob([html], { type: 'text/html' }));
    const frame = $('receipt-frame');
    frame.onload = () => {
      frame.onload = null;
      frame.contentWindow.print();
    };
    frame.src = receiptUrl;
    say('receipt-note', html.includes('DUPLICATE') ? 'Printed: a duplicate.' : 'Printed.');
  } catch (e) {
    say('receipt-note', errorText(e));
  }
}

/** The receipt's ESC/POS bytes to the till's printer; the node records the print once the
 * printer is reachable (an unreachable printer records nothing: try again, still the original). */
async function sendToPrinter() {
  const id = $('receipt-dialog').dataset.order;
  try {
    const sent = await api('POST', `/orders/${id}/receipt/prints?send=printer`);
    say('receipt-note', `Sent to the printer${sent.duplicate ? ' (a duplicate)' : ''}.`);
    // Enter next finishes the sale rather than printing again.
    $('receipt-dialog').querySelector('button[value=done]').focus();
  } catch (e) {
    say('receipt-note', errorText(e));
  }
}

async function emailReceipt() {
  const id = $('receipt-dialog').dataset.order;
  const to = $('receipt-email').value.trim();
  try {
    await api('POST', `/orders/${id}/receipt/emails`, { to });
    say('receipt-note', `Queued for ${to}: it is sent from the hub.`);
  } catch (e) {
    say('receipt-note', errorText(e));
  }
}

// ---------------------------------------------------------------- returns

let returning = null;
async function openReturn() {
  returning = null;
  $('return-number').value = '';
  $('return-lines').querySelector('tbody').replaceChildren();
  say('return-error', '');
  say('return-result', '');
  open($('return-dialog'));
  $('return-number').focus();
}

async function findReturn() {
  const number = $('return-number').value.trim();
  try {
    const receipt = await api('GET', `/receipts/${encodeURIComponent(number)}`);
    const order = await api('GET', `/orders/${receipt.order.id}`);
    returning = { order, receipt };
    const body = $('return-lines').querySelector('tbody');
    body.replaceChildren(...order.items.map((item, i) => {
      const back = (order.returned || [])[i] || 0;
      const tr = document.createElement('tr');
      const name = document.createElement('td');
      name.textContent = `${item.sku} × ${item.quantity}${back ? ` (${back} back already)` : ''}`;
      const paidCell = document.createElement('td');
      paidCell.className = 'n';
      paidCell.textContent = money(item.paid, order.currency);
      const qty = document.createElement('td');
      const input = document.createElement('input');
      input.type = 'number';
      input.min = '0';
      input.max = String(item.quantity - back);
      input.value = String(item.quantity - back);
      input.dataset.line = String(i);
      input.setAttribute('aria-label', `Units of ${item.sku} to take back`);
      qty.append(input);
      tr.append(name, paidCell, qty);
      return tr;
    }));
    say('return-error', '');
  } catch (e) {
    say('return-error', errorText(e));
  }
}

/** The units being taken back, and where their refund goes, as the return dialog says. */
function returnBody() {
  const lines = [...$('return-lines').querySelectorAll('input')]
    .map((i) => ({ line: Number(i.dataset.line), quantity: parseInt(i.value, 10) || 0 }))
    .filter((l) => l.quantity > 0);
  const kind = $('return-to').value;
  const body = { lines, restock: $('return-restock').checked };
  if (kind === 'original') body.refundTo = { kind: 'original' };
  if (kind === 'store_credit') body.refundTo = { kind: 'storeCredit', account: `customer:${returning.order.customerId}` };
  if (state.approval) body.approval = state.approval;
  return body;
}

async function submitReturn() {
  if (!returning) return findReturn();
  const body = returnBody();
  try {
    say('return-result', 'Taking it back…');
    const returned = await api('POST', `/orders/${returning.order.id}/returns`, body);
    state.approval = null;
    say('return-result', `Refunded ${money(returned.refund, returned.currency)} (${returned.returnId}).`);
    say('return-error', '');
    returning = null;
  } catch (e) {
    say('return-result', '');
    if (needsApproval(e) && (await askApproval(e.body.message))) {
      open($('return-dialog'));
      return submitReturn();
    }
    say('return-error', errorText(e));
  }
}

/** An exchange: the units back, the sale on screen as the new order, in one commit at the
 * node; the refund pays the new order first, and what is still due is tendered as a sale. */
async function submitExchange() {
  if (!returning) return findReturn();
  if (!state.cart.length) return say('return-error', 'Scan what the customer takes instead first, then exchange.');
  if (state.order) return say('return-error', 'This sale is already placed: finish or void it first.');
  const body = returnBody();
  const sale = orderBody();
  body.items = sale.items;
  if (sale.discount) body.discount = sale.discount;
  try {
    say('return-result', 'Exchanging…');
    const ex = await api('POST', `/orders/${returning.order.id}/exchanges`, body);
    state.approval = null;
    returning = null;
    state.order = ex.order;
    state.currency = ex.currency;
    state.due = ex.amountDue;
    $('return-dialog').close();
    renderCart();
    const back = `Exchange: ${money(ex.return.refund, ex.currency)} taken back`;
    if (Number(ex.amountDue) === 0) {
      say('sale-error', `${back}; the new items are paid.`);
      await paid();
    } else {
      say('sale-error', `${back}; ${money(ex.amountDue, ex.currency)} still due. Take the tender.`);
    }
  } catch (e) {
    say('return-result', '');
    if (needsApproval(e) && (await askApproval(e.body.message))) {
      open($('return-dialog'));
      return submitExchange();
    }
    say('return-error', errorText(e));
  }
}

// ---------------------------------------------------------------- the drawer

async function refreshSession() {
  try {
    state.session = await api('GET', '/sessions/current');
  } catch (e) {
    state.session = null;
  }
  const pill = $('status-drawer');
  pill.textContent = state.session ? `Drawer open · float ${money(state.session.float, state.session.currency)}` : 'Drawer closed';
  pill.dataset.state = state.session ? 'ok' : 'off';
}

async function openDrawer() {
  await refreshSession();
  renderDrawer();
  say('drawer-report', '');
  say('drawer-error', '');
  open($('drawer-dialog'));
  (state.session ? $('drawer-amount') : $('drawer-float')).focus();
}

function renderDrawer() {
  const s = state.session;
  $('drawer-open-part').hidden = !!s;
  $('drawer-session-part').hidden = !s;
  say('drawer-state', s
    ? `Open since ${new Date(s.openedAt).toLocaleTimeString()} with a float of ${money(s.float, s.currency)}.`
    : 'The drawer is closed.');
}

async function drawerAction(action) {
  say('drawer-error', '');
  try {
    if (action === 'open') {
      await api('POST', '/sessions', { float: Number($('drawer-float').value || 0), currency: state.currency });
    } else if (action === 'x') {
      showReport(await api('GET', `/sessions/${state.session.id}/report`));
    } else if (action === 'close') {
      const counted = $('drawer-counted').value;
      if (counted === '') return say('drawer-error', 'Count the drawer first: the counted cash.');
      const id = state.session.id;
      await api('POST', `/sessions/${id}/close`, { counted: Number(counted) });
      showReport(await api('GET', `/sessions/${id}/report`));
    } else {
      const body = { kind: action, reason: $('drawer-reason').value.trim() || action.replace('_', ' ') };
      if (action !== 'no_sale') body.amount = Number($('drawer-amount').value || 0);
      if (state.approval) body.approval = state.approval;
      await api('POST', `/sessions/${state.session.id}/cash`, body);
      state.approval = null;
      $('drawer-amount').value = '';
      $('drawer-reason').value = '';
      say('drawer-report', `${action.replace('_', ' ')} recorded.`);
    }
  } catch (e) {
    if (needsApproval(e)) {
      $('drawer-dialog').close();
      if (await askApproval(e.body.message)) {
        open($('drawer-dialog'));
        return drawerAction(action);
      }
      return;
    }
    say('drawer-error', errorText(e));
  }
  await refreshSession();
  renderDrawer();
}

/** An X or Z report as the node folded it, laid out as a table of its figures. */
function showReport(r) {
  const t = r.totals;
  const c = r.currency;
  const lines = [
    `${r.z ? `Z report ${r.z}` : 'X report'} · ${r.till}`,
    `Opened ${new Date(r.openedAt).toLocaleString()}${r.closedAt ? ` · closed ${new Date(r.closedAt).toLocaleString()}` : ''}`,
    '',
    `Sales               ${t.sales}   ${money(t.salesTotal, c)}`,
    ...t.tenders.map((x) => `  ${x.tender.padEnd(12)}${String(x.count).padStart(4)}   ${money(x.taken, c)}`),
    `Cash tendered          ${money(t.cashTendered, c)}`,
    `Change given           ${money(t.changeGiven, c)}`,
    `Cash refunds           ${money(t.cashRefunds, c)}`,
    `Paid in / out          ${money(t.paidIn, c)} / ${money(t.paidOut, c)}`,
    ...t.taxes.map((x) => `Tax ${`${x.class} ${x.rate}%`.padEnd(19)}${money(x.tax, c)}`),
    `Discounts              ${money(t.discounts, c)}`,
    `Promotions             ${money(t.promotions, c)}`,
    `Returns             ${t.returns}   ${money(t.refunds, c)}`,
    `Voids               ${t.voids}   ${money(t.voidsTotal, c)}`,
    `No-sales            ${t.noSales}`,
    ...t.staff.map((s) => `  ${String(s.staff || 'no one signed in').padEnd(18)}${s.sales} · ${money(s.salesTotal, c)}`),
    '',
    `Float                  ${money(r.float, c)}`,
    `Expected cash          ${money(r.expectedCash, c)}`,
  ];
  if (r.counted !== undefined && r.counted !== null) {
    lines.push(`Counted                ${money(r.counted, c)}`);
    lines.push(`Variance               ${money(r.variance, c)}`);
  }
  say('drawer-report', lines.join('\n'));
}

// ---------------------------------------------------------------- the status bar

function cardBudgetText() {
  const cards = state.status && state.status.offlineCards;
  if (!cards || !cards.budget) return '';
  return `Offline card budget left: ${money(cards.budget.headroom, cards.budget.currency)}`;
}

function age(ms) {
  const s = Math.round(ms / 1000);
  if (s < 90) return `${s} s`;
  const m = Math.round(s / 60);
  return m < 90 ? `${m} min` : `${Math.round(m / 60)} h`;
}

async function refreshStatus() {
  if (!state.till) return;
  try {
    const s = await api('GET', '/sync/status', undefined, state.till);
    state.status = s;
    const hub = s.peers.find((p) => p.role === 'hub');
    const tills = s.peers.filter((p) => p.role !== 'hub');
    const hubPill = $('status-hub');
    if (!hub) {
      hubPill.textContent = 'No hub';
      hubPill.dataset.state = 'off';
    } else {
      hubPill.textContent = hub.connected ? 'Hub online' : 'Hub offline';
      hubPill.dataset.state = hub.connected ? 'ok' : 'bad';
    }
    const up = tills.filter((p) => p.connected).length;
    const tillPill = $('status-tills');
    tillPill.textContent = `Tills ${up}/${tills.length}`;
    tillPill.dataset.state = up === tills.length ? 'ok' : 'bad';
    const waiting = hub ? hub.pendingEvents : Math.max(0, ...tills.map((p) => p.pendingEvents));
    const waitPill = $('status-waiting');
    waitPill.textContent = waiting ? `${waiting} event${waiting === 1 ? '' : 's'} waiting to sync` : 'All synced';
    waitPill.dataset.state = waiting ? 'warn' : 'ok';
    waitPill.dataset.count = String(waiting);
    const cards = s.offlineCards;
    const cardPill = $('status-cards');
    cardPill.hidden = !cards || (!cards.awaiting && !cards.budget);
    if (cards) {
      const oldest = cards.awaiting ? ` · oldest ${age(cards.oldestAgeMs)}` : '';
      const left = cards.budget ? ` · ${money(cards.budget.headroom, cards.budget.currency)} left` : '';
      cardPill.textContent = `${cards.awaiting} offline card${cards.awaiting === 1 ? '' : 's'}${oldest}${left}`;
      cardPill.dataset.state = cards.awaiting ? 'warn' : 'ok';
    }
    document.body.dataset.node = 'up';
  } catch (e) {
    document.body.dataset.node = 'down';
    $('status-hub').textContent = 'Till node not answering';
    $('status-hub').dataset.state = 'bad';
  }
}

// ---------------------------------------------------------------- keyboard and wiring

function wireKeypads() {
  for (const pad of document.querySelectorAll('.keypad')) {
    const input = $(pad.dataset.for);
    for (const key of ['1', '2', '3', '4', '5', '6', '7', '8', '9', '⌫', '0', '↵']) {
      const b = document.createElement('button');
      b.type = key === '↵' ? 'submit' : 'button';
      b.textContent = key;
      b.tabIndex = -1;
      if (key === '⌫') b.addEventListener('click', () => { input.value = input.value.slice(0, -1); });
      else if (key !== '↵') b.addEventListener('click', () => { input.value += key; input.focus(); });
      pad.append(b);
    }
  }
}

function wire() {
  $('pair-form').addEventListener('submit', pair);
  $('signin-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', signOut);
  $('scan-form').addEventListener('submit', scan);
  $('pay-cash').addEventListener('click', () => openTender('cash'));
  $('pay-card').addEventListener('click', () => openTender('card'));
  $('pay-credit').addEventListener('click', () => openTender('credit'));
  $('discount').addEventListener('click', openDiscount);
  $('price').addEventListener('click', openPrice);
  $('clear-sale').addEventListener('click', voidSale);
  $('tender-form').addEventListener('submit', (e) => {
    if (e.submitter && e.submitter.value === 'cancel') return;
    takePayment(e);
  });
  $('receipt-print').addEventListener('click', printReceipt);
  $('receipt-printer').addEventListener('click', sendToPrinter);
  $('receipt-send').addEventListener('click', emailReceipt);
  $('receipt-dialog').addEventListener('close', () => {
    voidSale();
    refreshSession();
  });
  $('return').addEventListener('click', openReturn);
  $('return-find').addEventListener('click', findReturn);
  $('return-number').addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      findReturn();
    }
  });
  $('return-submit').addEventListener('click', submitReturn);
  $('return-exchange').addEventListener('click', submitExchange);
  $('drawer').addEventListener('click', openDrawer);
  $('drawer-open').addEventListener('click', () => drawerAction('open'));
  $('drawer-in').addEventListener('click', () => drawerAction('paid_in'));
  $('drawer-out').addEventListener('click', () => drawerAction('paid_out'));
  $('drawer-nosale').addEventListener('click', () => drawerAction('no_sale'));
  $('drawer-x').addEventListener('click', () => drawerAction('x'));
  $('drawer-close').addEventListener('click', () => drawerAction('close'));
  const onEnter = (id, action) => $(id).addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      action();
    }
  });
  onEnter('drawer-float', () => drawerAction('open'));
  onEnter('drawer-counted', () => drawerAction('close'));
  for (const d of document.querySelectorAll('dialog')) d.addEventListener('close', () => setTimeout(focusScan));
  for (const b of document.querySelectorAll('[data-close]')) {
    b.addEventListener('click', () => b.closest('dialog').close(b.dataset.close));
  }
  document.addEventListener('keydown', (e) => {
    if ($('sell').hidden || document.querySelector('dialog[open]')) return;
    const keys = {
      F2: focusScan,
      F4: () => openTender('cash'),
      F6: () => openTender('card'),
      F7: openPrice,
      F8: openDiscount,
      F9: openReturn,
      F10: openDrawer,
    };
    if (keys[e.key]) {
      e.preventDefault();
      keys[e.key]();
    } else if (e.key === 'Escape') {
      $('results').replaceChildren();
      focusScan();
    }
  });
  refreshStatus();
  setInterval(refreshStatus, STATUS_EVERY_MS);
}

start();
