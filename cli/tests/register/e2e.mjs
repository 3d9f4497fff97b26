// The register end to end in headless Chromium (driven by cli/tests/register.rs, which runs
// the hub and two tills as real processes): a cashier's day with the keyboard alone.
//
// Environment: PLAYWRIGHT (playwright-core's directory), TILL_A, TILL_B (node URLs), TOKEN_A,
// TOKEN_B (till tokens to pair each screen with), HUB (the hub's URL), HUB_VIEWER, HUB_ADMIN
// (hub tokens for the console), SHOTS (where screenshots go). Only keys drive the registers
// (a focus stands for the Tab presses that reach a field).
// Protocol on stdout: `@hub stop` / `@hub start` ask the driver to stop or start the hub,
// `@sink start` to start the webhook receiver, and wait for `ok` on stdin; `@result JSON` is
// the last line.

import { createInterface } from 'node:readline';
import { mkdirSync } from 'node:fs';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const { chromium } = await import(`${env('PLAYWRIGHT')}/node_modules/playwright-core/index.mjs`);
const shots = env('SHOTS');
mkdirSync(shots, { recursive: true });

const stdin = createInterface({ input: process.stdin });
const replies = stdin[Symbol.asyncIterator]();
async function driver(line) {
  console.log(line);
  const { value } = await replies.next();
  if (value !== 'ok') throw new Error(`driver answered ${value} to ${line}`);
}

const result = { steps: [], scans: [], foreign: [] };
const step = (name) => {
  result.steps.push(name);
  console.error(`step: ${name}`);
};
function check(cond, what) {
  if (!cond) throw new Error(`failed: ${what}`);
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

/** A page at `url` + `path`, every request it makes recorded: none may leave `url`'s origin. */
async function register(url, viewport, path = '/register') {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const origin = new URL(url).origin;
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(`${origin}/`) && !u.startsWith('blob:') && !u.startsWith('data:')) {
      result.foreign.push(u);
    }
  });
  page.on('pageerror', (e) => {
    throw new Error(`page error at ${url}: ${e.message}`);
  });
  await page.goto(`${url}${path}`);
  return page;
}

let shot = 0;
async function snap(page, name) {
  shot += 1;
  await page.screenshot({ path: `${shots}/${String(shot).padStart(2, '0')}-${name}.png` });
}

const key = (page, k) => page.keyboard.press(k);
const type = (page, text) => page.keyboard.type(text);
const text = (page, sel) => page.locator(sel).innerText();

async function signIn(page, token, memberLabel, pin) {
  await page.waitForSelector('#pair:not([hidden])');
  await page.focus('#pair-token');
  await type(page, token);
  await key(page, 'Enter');
  await page.waitForSelector('#signin:not([hidden])');
  await page.selectOption('#signin-staff', { label: memberLabel });
  await page.focus('#signin-pin');
  await type(page, pin);
  await key(page, 'Enter');
  await page.waitForSelector('#sell:not([hidden])');
}

/** Scans `code` as a barcode wedge does (digits, Enter). The page's own clock times the scan:
 * from the Enter keydown to the cart's first change (the line drawn, before the node's quote
 * of the sale returns) — what a cashier sees, without the driver's polling in it. */
async function scan(page, code, lines) {
  await page.waitForFunction(() => document.activeElement && document.activeElement.id === 'scan');
  await type(page, code);
  await page.evaluate(() => {
    const timing = {};
    window.scanTiming = timing;
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') timing.down = performance.now();
    }, { capture: true, once: true });
    const seen = new MutationObserver(() => {
      timing.shown = performance.now();
      seen.disconnect();
    });
    seen.observe(document.querySelector('#cart tbody'), { childList: true, subtree: true });
  });
  await key(page, 'Enter');
  await page.waitForFunction(
    ([n, c]) => {
      if (window.scanTiming.shown === undefined) return false;
      const rows = document.querySelectorAll('#cart tbody tr');
      return rows.length === n && [...rows].some((r) => r.innerText.includes(c));
    },
    [lines, code],
  );
  const timing = await page.evaluate(() => window.scanTiming);
  result.scans.push({ code, enterToLineMs: Math.round((timing.shown - timing.down) * 10) / 10 });
}

async function waitText(page, sel, re, what) {
  await page.waitForFunction(([s, r]) => new RegExp(r).test(document.querySelector(s).innerText), [sel, re.source], { timeout: 30000 })
    .catch(async () => {
      throw new Error(`${what}: ${sel} says ${await text(page, sel)}`);
    });
}

try {
  // Till A at 1024×768: pair, sign in, open the drawer.
  const a = await register(env('TILL_A'), { width: 1024, height: 768 });
  await signIn(a, env('TOKEN_A'), 'Ana Lima (cashier)', '1234');
  step('signed in at till A');
  await snap(a, 'signed-in');
  await key(a, 'F10');
  await a.waitForSelector('#drawer-dialog[open]');
  await type(a, '100');
  await key(a, 'Enter');
  await waitText(a, '#drawer-state', /Open since/, 'the drawer opened');
  await key(a, 'Escape');
  await waitText(a, '#status-drawer', /Drawer open/, 'the status bar shows the drawer');
  step('drawer opened with a float of 100');

  // Three scans: two mugs (one line, quantity 2) and a tea.
  await scan(a, '4006381333931', 1);
  await scan(a, '4006381333931', 1);
  await scan(a, '5000112637922', 2);
  await waitText(a, '#totals', /Total/, 'the node priced the sale');
  const rows = await a.locator('#cart tbody tr').count();
  check(rows === 2, `two lines, got ${rows}`);
  check((await a.locator('#cart tbody tr').first().locator('input').inputValue()) === '2', 'two mugs on one line');
  step('three items scanned');
  await snap(a, 'scanned');

  // A 20 % discount on the whole sale: above the store's 10 %, so a manager approves it.
  await key(a, 'F8');
  await a.waitForSelector('#discount-dialog[open]');
  await a.focus('#discount-percent');
  await type(a, '20');
  await key(a, 'Enter');
  await a.waitForSelector('#approval-dialog[open]');
  await snap(a, 'approval');
  await a.selectOption('#approval-staff', { label: 'Max Stone (manager)' });
  await a.focus('#approval-pin');
  await type(a, '9999');
  await key(a, 'Enter');
  await waitText(a, '#totals', /Discount/, 'the discount applied');
  const totals = await text(a, '#totals');
  step('discount approved by the manager');
  await snap(a, 'discounted');

  // Cash: 50 given, the change shown, the receipt in its print view.
  await key(a, 'F4');
  await a.waitForSelector('#tender-dialog[open]');
  await type(a, '50');
  await key(a, 'Enter');
  await a.waitForSelector('#receipt-dialog[open]');
  await waitText(a, '#receipt-change', /Change USD \d/, 'the change shown');
  const frame = a.frameLocator('#receipt-frame');
  await frame.locator('pre').waitFor();
  const receiptText = await frame.locator('pre').innerText();
  check(/Served by Ana Lima/.test(receiptText), 'the receipt names the cashier');
  check(/Discount/.test(receiptText) || /DISCOUNT/i.test(receiptText), 'the receipt shows the discount');
  const number = receiptText.match(/Receipt\s+(\S+-\d+)/)[1];
  result.receipt = number;
  result.change = await text(a, '#receipt-change');
  result.totals = totals;
  step('paid in cash, change given, receipt shown');
  await snap(a, 'receipt');
  // This till has a receipt printer: the ESC/POS bytes go to it (the driver checks them).
  await a.waitForSelector('#receipt-printer:not([hidden])');
  await a.focus('#receipt-printer');
  await key(a, 'Enter');
  await waitText(a, '#receipt-note', /^Sent to the printer\.$/, 'sent to the printer');
  await key(a, 'Enter'); // New sale
  await a.waitForSelector('#receipt-dialog', { state: 'hidden' });

  // Till B at 1920×1080: the return of that sale by its receipt number.
  const b = await register(env('TILL_B'), { width: 1920, height: 1080 });
  await signIn(b, env('TOKEN_B'), 'Bo Park (cashier)', '2468');
  step('signed in at till B');
  await key(b, 'F9');
  await b.waitForSelector('#return-dialog[open]');
  await type(b, number);
  // The sale reaches till B over the mesh a moment after it was made: find it again until then.
  for (let tries = 0; ; tries += 1) {
    await key(b, 'Enter');
    try {
      await b.waitForSelector('#return-lines input', { timeout: 1000 });
      break;
    } catch (e) {
      if (tries === 30) throw new Error(`the sale never reached till B: ${await text(b, '#return-error')}`);
    }
  }
  await b.locator('#return-lines input').nth(1).fill('0'); // the tea stays sold
  await b.selectOption('#return-to', 'cash');
  await b.focus('#return-submit');
  await key(b, 'Enter');
  await waitText(b, '#return-result', /Refunded USD/, 'the return at till B');
  result.returned = await text(b, '#return-result');
  step('returned at till B');
  await snap(b, 'returned');
  await key(b, 'Escape');

  // An exchange at till B: the tea back for a mug scanned first; the tea's refund pays part
  // of the mug, the rest is tendered in cash.
  await b.waitForSelector('#return-dialog', { state: 'hidden' });
  await scan(b, '4006381333931', 1);
  await waitText(b, '#totals', /Total/, 'the node priced the mug');
  await key(b, 'F9');
  await b.waitForSelector('#return-dialog[open]');
  await type(b, number);
  await key(b, 'Enter');
  await b.waitForSelector('#return-lines input');
  await b.locator('#return-lines input').nth(0).fill('0'); // the mugs came back already
  await b.locator('#return-lines input').nth(1).fill('1');
  await b.focus('#return-exchange');
  await key(b, 'Enter');
  await b.waitForSelector('#return-dialog', { state: 'hidden' });
  await waitText(b, '#sale-error', /Exchange: USD [\d.]+ taken back; USD [\d.]+ still due/, 'the exchange');
  result.exchange = await text(b, '#sale-error');
  await key(b, 'F4');
  await b.waitForSelector('#tender-dialog[open]');
  await type(b, '5');
  await key(b, 'Enter');
  await b.waitForSelector('#receipt-dialog[open]');
  await waitText(b, '#receipt-change', /Change USD \d/, 'the exchange\'s change');
  step('exchanged at till B: the tea for a mug, the rest in cash');
  await snap(b, 'exchanged');
  await key(b, 'Enter');
  await b.waitForSelector('#receipt-dialog', { state: 'hidden' });

  // The hub stopped: the status bar says so within the link's idle timeout, the next sale
  // completes all the same, its events wait, and they drain once the hub is back.
  await driver('@hub stop');
  await waitText(a, '#status-hub', /Hub offline/, 'the status bar sees the hub gone');
  await scan(a, '5000112637922', 1);
  await waitText(a, '#totals', /Total/, 'the node priced the offline sale');
  // A dented box: sold at 2.50 instead of 3.00, a price override the manager approves by PIN.
  await key(a, 'F7');
  await a.waitForSelector('#price-dialog[open]');
  await type(a, '2.50');
  await a.focus('#price-reason');
  await type(a, 'dented box');
  await key(a, 'Enter');
  await a.waitForSelector('#approval-dialog[open]');
  await a.selectOption('#approval-staff', { label: 'Max Stone (manager)' });
  await a.focus('#approval-pin');
  await type(a, '9999');
  await key(a, 'Enter');
  await waitText(a, '#totals', /Total\s+USD 2\.50/, 'the override priced by the node');
  await key(a, 'F4');
  await a.waitForSelector('#tender-dialog[open]');
  await type(a, '5');
  await key(a, 'Enter');
  await a.waitForSelector('#receipt-dialog[open]');
  await waitText(a, '#receipt-change', /Change USD \d/, 'the offline sale\'s change');
  await key(a, 'Enter');
  await a.waitForSelector('#receipt-dialog', { state: 'hidden' });
  await waitText(a, '#status-waiting', /^[1-9]\d* events? waiting to sync$/, 'the sale\'s events wait');
  check(/Hub offline/.test(await text(a, '#status-hub')), 'the hub still offline');
  result.waiting = await text(a, '#status-waiting');
  step('sold with the hub down (a price override approved): hub offline, events waiting');
  await snap(a, 'hub-offline');
  await driver('@hub start');
  await waitText(a, '#status-hub', /Hub online/, 'the hub back');
  await waitText(a, '#status-waiting', /All synced/, 'the waiting events drained');
  step('the hub back: everything synced');
  await snap(a, 'hub-back');

  // Close the drawer with the count; the Z report.
  await key(a, 'F10');
  await a.waitForSelector('#drawer-dialog[open]');
  await a.focus('#drawer-x');
  await key(a, 'Enter');
  await waitText(a, '#drawer-report', /X report/, 'the X report');
  result.xReport = await text(a, '#drawer-report');
  // Counted 1.00 short of what the node expects.
  const expected = Number(result.xReport.match(/Expected cash\s+USD (-?[\d.]+)/)[1]);
  await a.focus('#drawer-counted');
  await type(a, (expected - 1).toFixed(2));
  await key(a, 'Enter');
  await waitText(a, '#drawer-report', /Z report 1/, 'the Z report')
    .catch(async (e) => { throw new Error(`${await text(a, '#drawer-error')}: ${e.message}`); });
  result.zReport = await text(a, '#drawer-report');
  step('drawer closed: Z report 1');
  await snap(a, 'z-report');

  // Both sizes: the pay button is on screen without scrolling.
  for (const page of [a, b]) {
    const box = await page.locator('#pay-cash').boundingBox();
    const vp = page.viewportSize();
    check(box && box.y + box.height <= vp.height && box.x + box.width <= vp.width, `Cash on screen at ${vp.width}×${vp.height}`);
  }

  // The hub's console with a viewer token: both tills online, the day's three sales, Z report 1,
  // the Z report's webhook a dead letter (nothing answered it) that a viewer may not retry.
  const hub = await register(env('HUB'), { width: 1280, height: 900 }, '/console');
  await hub.waitForSelector('#signin:not([hidden])');
  await hub.focus('#signin-token');
  await type(hub, env('HUB_VIEWER'));
  await key(hub, 'Enter');
  await waitText(hub, '#bar-role', /Viewer/, 'signed in as a viewer');
  await waitText(hub, '#tills-summary', /1 store, 2 of 2 tills online/, 'both tills online');
  // Each till's journal: events held, all of them vouched for by the till's signature.
  await hub.waitForFunction(() => [...document.querySelectorAll('#tills-table tbody tr')]
    .filter((r) => Number(r.cells[4].innerText) > 0 && / \(all\)$/.test(r.cells[5].innerText)).length === 2, null, { timeout: 30000 })
    .catch(async () => { throw new Error(`the tills' journals: ${await text(hub, '#tills-table')}`); });
  const today = new Date().toISOString().slice(0, 10);
  await hub.waitForFunction((day) => [...document.querySelectorAll('#sales-table tbody tr')]
    .some((r) => r.cells[0].innerText === day && r.cells[1].innerText === 's1' && r.cells[2].innerText === '3'), today, { timeout: 30000 })
    .catch(async () => { throw new Error(`the day's sales: ${await text(hub, '#sales-table')}`); });
  check(await hub.locator('#sales-chart svg rect.bar').count() >= 1, 'the sales chart has a bar');
  await waitText(hub, '#z-table', /s1/, 'the Z report at the hub');
  await hub.waitForFunction(() => document.querySelector('#dlq-table').dataset.count === '1', null, { timeout: 30000 })
    .catch(async () => { throw new Error(`the dead letter: ${await text(hub, '#delivery')}`); });
  check(await hub.locator('#dlq-retry').isDisabled(), 'a viewer cannot retry');
  check((await text(hub, '#bar-error')) === '', `the console read everything: ${await text(hub, '#bar-error')}`);
  result.console = { tills: await text(hub, '#tills-table'), sales: await text(hub, '#sales-table'), z: await text(hub, '#z-table') };
  step('the console shows two tills online, the day\'s sales, the Z report, a dead letter');
  await snap(hub, 'console-viewer');

  // An admin token: the receiver is up now, and the retry delivers the dead letter.
  await driver('@sink start');
  await hub.locator('#sign-out').click();
  await hub.waitForSelector('#signin:not([hidden])');
  await hub.focus('#signin-token');
  await type(hub, env('HUB_ADMIN'));
  await key(hub, 'Enter');
  await waitText(hub, '#bar-role', /Admin/, 'signed in as an admin');
  await hub.focus('#dlq-retry');
  await key(hub, 'Enter');
  await waitText(hub, '#dlq-result', /Attempted 1, delivered 1, remaining 0/, 'the retry');
  await hub.waitForFunction(() => document.querySelector('#dlq-table').dataset.count === '0', null, { timeout: 10000 });
  result.console.retried = await text(hub, '#dlq-result');
  step('an admin retried the dead letter: delivered');
  await snap(hub, 'console-admin');
  console.log(`@result ${JSON.stringify(result)}`);
} catch (e) {
  result.error = String(e && e.stack || e);
  console.log(`@result ${JSON.stringify(result)}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  stdin.close();
}
