// The dashboard in a real browser (Debian's chromium, driven by
// playwright-core), against a live `accords serve` on the bundled data with
// the example exchange rates loaded. Started by scripts/browser-test, which
// passes ACCORDS_URL, ACCORDS_KEY (a write key) and BROWSER_CHROMIUM.
//
// Every scenario runs at desktop and phone size, and fails on any console
// error, uncaught exception, failed request or 4xx/5xx answer it did not
// expect (only the mistyped partner expects some).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const BASE = process.env.ACCORDS_URL;
const KEY = process.env.ACCORDS_KEY;
const CHROMIUM = process.env.BROWSER_CHROMIUM || '/usr/bin/chromium';
const LABEL = process.env.BROWSER_LABEL || 'local';
assert.ok(BASE && KEY, 'ACCORDS_URL and ACCORDS_KEY must be set (scripts/browser-test sets them)');

const VIEWPORTS = {
  desktop: { width: 1280, height: 800 },
  phone: { width: 390, height: 844 },
};
const WAIT = { timeout: 10_000 };

let browser;
before(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM });
});
after(async () => {
  await browser?.close();
});

// ---------- the API, read directly, to check the page against ----------

async function apiJson(path) {
  const res = await fetch(BASE + path, { headers: { Accept: 'application/json' } });
  assert.equal(res.status, 200, `${path}: ${res.status}`);
  return { body: await res.json(), headers: res.headers };
}

async function allIds(filters) {
  const { body } = await apiJson(`/v1/agreements?limit=500&fields=id&${filters}`);
  assert.equal(body.next_cursor, null);
  return body.items.map((a) => a.id).sort();
}

async function write(method, path, body) {
  const res = await fetch(BASE + path, {
    method,
    headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/merge-patch+json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  assert.equal(res.status, 200, `${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

// ---------- a page that records everything that goes wrong ----------

/**
 * Opens the dashboard in a fresh context (empty storage) at one size.
 * `expected(response)` names the 4xx answers a scenario provokes on purpose.
 */
async function open(viewport, { expected = () => false, path = '/' } = {}) {
  const context = await browser.newContext({ viewport, locale: 'en-GB' });
  const page = await context.newPage();
  const problems = [];
  const requests = [];
  let expectedSeen = 0;
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    // The browser logs every 4xx it fetched; those the scenario expects are fine.
    if (expectedSeen && /^Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) return;
    problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`exception: ${e.message}`));
  page.on('request', (r) => requests.push(r));
  // A fetch the page itself aborts (a newer filter overtook it) is not a failure.
  page.on('requestfailed', (r) => {
    if (r.failure()?.errorText !== 'net::ERR_ABORTED') problems.push(`failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => {
    if (r.status() < 400) return;
    if (expected(r)) expectedSeen += 1;
    else problems.push(`answer ${r.status()}: ${r.url()}`);
  });
  await page.goto(BASE + path);
  await rowsLoaded(page);
  return {
    page,
    requests,
    async close() {
      await context.close();
      assert.deepEqual(problems, [], 'console errors, failed requests or unexpected error answers');
    },
  };
}

/** Waits until the table shows agreements (not the loading state). */
async function rowsLoaded(page) {
  await page.waitForFunction(() => !document.querySelector('#list[aria-busy]') && document.querySelectorAll('#list-body tr[data-id]').length > 0, null, WAIT);
}

/** Waits until the table shows exactly these agreements (in any order). */
async function rowsAre(page, ids) {
  const want = [...ids].sort();
  await page.waitForFunction((w) => {
    if (document.querySelector('#list[aria-busy]')) return false;
    const got = [...document.querySelectorAll('#list-body tr[data-id]')].map((tr) => tr.dataset.id).sort();
    return JSON.stringify(got) === JSON.stringify(w);
  }, want, WAIT);
}

const rowIds = (page) => page.$$eval('#list-body tr[data-id]', (trs) => trs.map((tr) => tr.dataset.id));
const cells = (page, cls) => page.$$eval(`#list-body td.${cls}`, (tds) => tds.map((td) => td.textContent.trim()));

/** Chooses a sort: the column header's button on a desktop, the select on a phone (the headers are hidden there). */
async function sortBy(page, phone, key, desc) {
  if (phone) {
    await page.selectOption('#sort', `${desc ? '-' : ''}${key}`);
  } else {
    const th = page.locator(`#list thead th[data-sort="${key}"]`);
    const want = desc ? 'descending' : 'ascending';
    for (let i = 0; i < 2 && (await th.getAttribute('aria-sort')) !== want; i += 1) {
      await th.locator('button').click();
    }
    assert.equal(await th.getAttribute('aria-sort'), want);
  }
}

/** Sends the filter form a value the way a user does. */
async function typeFilter(page, selector, value) {
  await page.fill(selector, value);
}

for (const [size, viewport] of Object.entries(VIEWPORTS)) {
  const phone = size === 'phone';
  const name = (what) => `${LABEL} ${size}: ${what}`;

  test(name('loads: figures and charts above the table, partner-name order, markers, data as of the latest change'), async () => {
    const { page, close } = await open(viewport);
    const ids = await allIds('');
    await rowsAre(page, ids);

    // Figures, then charts, then the table.
    const top = async (sel) => (await page.locator(sel).boundingBox()).y;
    assert.ok(await top('#summary') < await top('#charts'), 'figures above the charts');
    assert.ok(await top('#charts') < await top('#agreements'), 'charts above the table');
    assert.equal(await page.textContent('#fig-agreements .figure-value'), String(ids.length));
    await page.waitForFunction(() => document.querySelector('#by-partner svg'), null, WAIT);

    // Partner-name order by default.
    const partners = await cells(page, 'c-partner');
    const sorted = [...partners].sort((a, b) => a.localeCompare(b, 'en', { sensitivity: 'base' }));
    assert.deepEqual(partners, sorted);
    assert.equal(await page.getAttribute('#list thead th[data-sort="partner"]', 'aria-sort'), 'ascending');

    // "no stated amount", never "none"; the markers in the table itself.
    const amounts = await cells(page, 'c-amount');
    assert.ok(amounts.includes('no stated amount'), amounts.join(' | '));
    assert.ok(!amounts.includes('none'));
    const us = page.locator('#list-body tr[data-id="ua-us-2024"]');
    assert.match(await us.locator('.flag-contested').textContent(), /contested.*legal status/);
    assert.ok(await page.locator('#list-body .flag-unverified').count() > 0);

    // Data as of the latest change, with its number.
    const { headers } = await apiJson('/v1/agreements?limit=1');
    const revision = Number(/r(\d+)/.exec(headers.get('etag'))[1]);
    const { body: feed } = await apiJson(`/v1/changes?since=${revision - 1}&limit=1`);
    await page.waitForFunction((r) => (document.querySelector('#as-of')?.textContent || '').includes(`revision ${r}`), revision, WAIT);
    assert.equal(await page.getAttribute('#as-of-time', 'datetime'), feed.items[0].at);

    // Every column readable: nothing wider than the screen, each cell of a row on it.
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth) <= viewport.width, 'no sideways scrolling');
    const boxes = await page.locator('#list-body tr[data-id="ua-jp-2024"] td').evaluateAll((tds) => tds.map((td) => {
      const r = td.getBoundingClientRect();
      return { left: r.left, right: r.right, width: r.width, text: td.textContent.trim() };
    }));
    assert.equal(boxes.length, 5);
    for (const b of boxes) {
      assert.ok(b.left >= 0 && b.right <= viewport.width && b.width > 40 && b.text, JSON.stringify(b));
    }
    if (phone) {
      // Cards: each cell says what it is.
      const labels = await page.locator('#list-body tr[data-id="ua-jp-2024"] td').evaluateAll((tds) => tds.map((td) => getComputedStyle(td, '::before').content));
      assert.deepEqual(labels, ['"Partner"', '"Signed"', '"Title"', '"Status"', '"Pledged"']);
    }
    await close();
  });

  test(name('filters by partner, area and currency; the CSV link gives what is shown'), async () => {
    const { page, close } = await open(viewport);
    await typeFilter(page, '#f-partner', 'Japan');
    await rowsAre(page, ['ua-jp-2024']);
    assert.match(page.url(), /partner=Japan/);
    const csv = await page.$eval('#csv-agreements', (a) => a.href);
    assert.match(csv, /format=csv/);
    assert.match(csv, /partner=Japan/);
    const reply = await page.request.get(csv);
    assert.equal(reply.status(), 200);
    assert.match(reply.headers()['content-type'], /^text\/csv/);
    const lines = (await reply.text()).trim().split(/\r?\n/);
    assert.equal(lines.length, 2, 'a header and one agreement');
    assert.match(lines[1], /^ua-jp-2024,/);

    await page.click('button[type="reset"]');
    await rowsAre(page, await allIds(''));

    await page.selectOption('#f-area', 'demining');
    await rowsAre(page, await allIds('area=demining'));
    const areaCsv = await page.request.get(await page.$eval('#csv-agreements', (a) => a.href));
    assert.equal((await areaCsv.text()).trim().split(/\r?\n/).length - 1, (await rowIds(page)).length);
    await page.click('button[type="reset"]');
    await rowsAre(page, await allIds(''));

    await page.selectOption('#f-currency', 'GBP');
    await rowsAre(page, await allIds('currency=GBP'));
    assert.match(await page.$eval('#csv-pledges', (a) => a.href), /currency=GBP.*rows=pledges|rows=pledges.*currency=GBP/);
    await close();
  });

  test(name('sorts by date, status and pledged amount; opens a detail from the keyboard'), async () => {
    const { page, close } = await open(viewport);
    await sortBy(page, phone, 'date', true);
    const dates = await cells(page, 'c-date');
    const signed = dates.filter((d) => /^\d{4}-\d\d-\d\d$/.test(d));
    assert.deepEqual(signed, [...signed].sort().reverse(), 'newest first');
    assert.deepEqual(dates.slice(signed.length).every((d) => d === 'not signed'), true, 'unsigned last');
    assert.match(page.url(), /sort=-date/);

    await sortBy(page, phone, 'status', false);
    const order = ['negotiating', 'signed', 'ratified', 'in force', 'expired', 'terminated'];
    const statuses = (await cells(page, 'c-status')).map((x) => order.indexOf(x));
    assert.ok(statuses.every((x) => x >= 0));
    assert.deepEqual(statuses, [...statuses].sort((a, b) => a - b));

    // Largest converted amount first; agreements with nothing converted (no amount) last.
    await sortBy(page, phone, 'amount', true);
    const amounts = await cells(page, 'c-amount');
    assert.notEqual(amounts[0], 'no stated amount');
    assert.equal(amounts.at(-1), 'no stated amount');
    const firstNone = amounts.indexOf('no stated amount');
    assert.ok(amounts.slice(firstNone).every((x) => x === 'no stated amount' || x === 'counted in another agreement' || !x.startsWith('EUR')));

    // The keyboard: a title link, Enter, the dialog; Escape closes it and gives the focus back.
    await sortBy(page, phone, 'partner', false);
    const link = page.locator('#list-body tr[data-id="ua-us-2024"] a.open');
    await link.focus();
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('#detail').open, null, WAIT);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'detail-close');
    await page.waitForFunction(() => /U\.S\.-Ukraine/.test(document.querySelector('#detail-title')?.textContent || ''), null, WAIT);
    assert.match(await page.textContent('#detail-body'), /contested/i);
    assert.match(page.url(), /open=ua-us-2024/);
    await page.keyboard.press('Escape');
    await page.waitForFunction(() => !document.querySelector('#detail').open, null, WAIT);
    assert.equal(await page.evaluate(() => document.activeElement.closest('tr')?.dataset.id), 'ua-us-2024');
    await close();
  });

  test(name('follows a live update after a write, without a reload'), async () => {
    const { page, close } = await open(viewport);
    await page.evaluate(() => { window.notReloaded = true; });
    await page.waitForFunction(() => document.querySelector('#live.is-live') && /revision \d+/.test(document.querySelector('#as-of').textContent), null, WAIT);
    const before = Number((await page.textContent('#as-of')).match(/revision (\d+)/)[1]);
    // The detail is open while the data changes underneath.
    const old = (await apiJson('/v1/agreements/ua-jp-2024')).body.title;
    await page.locator('#list-body tr[data-id="ua-jp-2024"] a.open').click();
    await page.waitForFunction((t) => document.querySelector('#detail-title')?.textContent === t, old, WAIT);

    const title = `Accord on Support for Ukraine and Cooperation (${LABEL} ${size} ${Date.now()})`;
    await write('PATCH', '/v1/agreements/ua-jp-2024', { title });
    const pledge = (await apiJson('/v1/pledges/ua-jp-2024-p1')).body;
    const amount = String(BigInt(pledge.amount.split('.')[0]) + 1_000_000n);
    await write('PATCH', '/v1/pledges/ua-jp-2024-p1', { amount });

    await page.waitForFunction((t) => document.querySelector('#detail-title')?.textContent === t, title, WAIT);
    await page.keyboard.press('Escape');
    await page.waitForFunction((t) => document.querySelector('#list-body tr[data-id="ua-jp-2024"] a.open')?.textContent === t, title, WAIT);
    const shown = `USD ${BigInt(amount).toLocaleString('en-US')}`;
    await page.waitForFunction((s) => (document.querySelector('#list-body tr[data-id="ua-jp-2024"] td.c-amount')?.textContent || '').includes(s), shown, WAIT);
    await page.waitForFunction((b) => Number(((document.querySelector('#as-of')?.textContent || '').match(/revision (\d+)/) || [])[1]) >= b + 2, before, WAIT);
    assert.equal(await page.evaluate(() => window.notReloaded), true, 'the page was not reloaded');
    // The keyboard focus came back to the row and stayed there through the redraw.
    assert.equal(await page.evaluate(() => document.activeElement.closest('tr')?.dataset.id), 'ua-jp-2024');
    await close();
  });

  test(name('switches currency and the converted view, which names its rates and what it leaves out'), async () => {
    const { page, close } = await open(viewport);
    // Rates are loaded, so the converted view comes first.
    await page.waitForFunction(() => document.querySelector('#chart-currency').value === 'converted', null, WAIT);
    const note = await page.textContent('#rates-note');
    assert.match(note, /Rates used:/);
    assert.match(note, /USD 2024: [\d.]+ — 1 \/ annual average of \d+ daily USD rates against EUR/);
    assert.match(note, /GBP 2024/);
    // The UK's and Japan's pledges are converted, and what could not be is said, not dropped.
    const chart = await page.getAttribute('#by-partner svg', 'aria-label');
    assert.match(chart, /Japan: EUR [\d,]+/);
    assert.match(chart, /United Kingdom: EUR [\d,]+/);
    assert.match(note, /Not converted, so not in these totals: \d+ pledges? \(.*GBP [\d,]+/);
    assert.match(note, /no GBP rate loaded for 2025/);
    assert.match(await page.textContent('#fig-total'), /EUR, converted.*EUR [\d,]+/);
    const chartCsv = await page.$eval('#csv-chart', (a) => a.href);
    assert.match(chartCsv, /convert=EUR/);
    const reply = await page.request.get(chartCsv);
    assert.equal(reply.status(), 200);
    assert.match((await reply.text()).split(/\r?\n/)[0], /total_EUR/);

    // One currency: no conversion, no rates named, only that currency's pledges.
    await page.selectOption('#chart-currency', 'USD');
    await page.waitForFunction(() => document.querySelector('#rates-note').hidden, null, WAIT);
    const usd = await page.getAttribute('#by-partner svg', 'aria-label');
    assert.match(usd, /in USD/);
    assert.match(usd, /Japan: USD [\d,]+/);
    assert.doesNotMatch(usd, /United Kingdom/);
    assert.doesNotMatch(await page.$eval('#csv-chart', (a) => a.href), /convert=/);
    assert.match(page.url(), /chart_currency=USD/);
    await page.selectOption('#chart-currency', 'GBP');
    assert.match(await page.getAttribute('#by-partner svg', 'aria-label'), /United Kingdom: GBP [\d,]+/);
    await page.selectOption('#chart-currency', 'converted');
    await page.waitForFunction(() => !document.querySelector('#rates-note').hidden, null, WAIT);
    await close();
  });

  test(name('switches to Ukrainian, remembered, and asks the API in Ukrainian'), async () => {
    const { page, requests, close } = await open(viewport);
    await page.click('button[data-lang="uk"]');
    await page.waitForFunction(() => document.documentElement.lang === 'uk', null, WAIT);
    assert.equal(await page.textContent('h1'), 'Двосторонні безпекові угоди України');
    assert.equal(await page.getAttribute('button[data-lang="uk"]', 'aria-pressed'), 'true');
    await page.waitForFunction(() => /Показано/.test(document.querySelector('#list-status').textContent), null, WAIT);
    assert.match(await page.textContent('#list-body'), /підписана/);
    assert.match(await page.textContent('#list-body'), /Японія/);
    const seen = requests.length;

    await page.reload();
    await rowsLoaded(page);
    await page.waitForFunction(() => document.documentElement.lang === 'uk' && /Показано/.test(document.querySelector('#list-status').textContent), null, WAIT);
    assert.equal(await page.textContent('label[for="f-partner"]'), 'Партнер');
    const asked = requests.slice(seen).filter((r) => new URL(r.url()).pathname.startsWith('/v1/') && r.resourceType() === 'fetch');
    assert.ok(asked.length >= 4, `${asked.length} API requests after the reload`);
    for (const r of asked) assert.equal(r.headers()['accept-language'], 'uk', r.url());

    await page.click('button[data-lang="en"]');
    await page.waitForFunction(() => document.documentElement.lang === 'en' && /shown/.test(document.querySelector('#list-status').textContent), null, WAIT);
    assert.equal(await page.evaluate(() => localStorage.getItem('accords.lang')), 'en');
    // Never a lang= parameter: unknown parameters are a 400.
    for (const r of requests) assert.ok(!new URL(r.url()).searchParams.has('lang'), r.url());
    await close();
  });

  test(name('shows the data as published at a past revision, what moved since, and goes back to now'), async () => {
    // The revision a story cited, then an editor's correction after it.
    const cited = (await apiJson('/v1/agreements/ua-jp-2024')).headers.get('accords-revision');
    assert.match(cited, /^\d+$/);
    const then = (await apiJson('/v1/pledges/ua-jp-2024-p1')).body.amount;
    const amount = String(BigInt(then.split('.')[0]) + 7_000_000n);
    await write('PATCH', '/v1/pledges/ua-jp-2024-p1', { amount });

    const { page, close } = await open(viewport, { path: `/?partner=JP&revision=${cited}` });
    await page.waitForFunction((r) => (document.querySelector('#as-of')?.textContent || '').startsWith(`As published at revision ${r}`), cited, WAIT);
    assert.equal(await page.inputValue('#past-revision'), cited);
    // The table shows the amount as it was; the CSV links ask for the same revision.
    const was = `USD ${BigInt(then.split('.')[0]).toLocaleString('en-US')}`;
    await page.waitForFunction((s) => (document.querySelector('#list-body tr[data-id="ua-jp-2024"] td.c-amount')?.textContent || '').includes(s), was, WAIT);
    assert.match(await page.getAttribute('#csv-agreements', 'href'), new RegExp(`revision=${cited}`));
    // What moved since: Japan's USD total, by the correction.
    await page.waitForFunction(() => !document.querySelector('#since').hidden && document.querySelectorAll('#since-body tr').length > 0, null, WAIT);
    const moved = await page.$$eval('#since-body tr', (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent.trim())));
    const usd = moved.find((cells) => cells[1] === 'USD');
    assert.ok(usd, `a USD total moved: ${JSON.stringify(moved)}`);
    assert.match(usd[0], /Japan/);
    assert.match(usd[4], /^\+7000000(\.0+)?$/);
    // The detail names the change, field by field.
    await page.locator('#list-body tr[data-id="ua-jp-2024"] a.open').click();
    await page.waitForSelector('#detail-since', WAIT);
    const changes = await page.textContent('#detail-body ul.changes');
    assert.match(changes, /pledges\[ua-jp-2024-p1\]\.amount changed/);
    await page.keyboard.press('Escape');
    // Back to now: the corrected amount, no past banner, no "since".
    await page.locator('#past-leave').click();
    const now = `USD ${BigInt(amount).toLocaleString('en-US')}`;
    await page.waitForFunction((s) => (document.querySelector('#list-body tr[data-id="ua-jp-2024"] td.c-amount')?.textContent || '').includes(s), now, WAIT);
    await page.waitForFunction(() => /^Data as of/.test(document.querySelector('#as-of')?.textContent || ''), null, WAIT);
    assert.ok(await page.locator('#since').isHidden());
    assert.ok(!new URL(page.url()).searchParams.has('revision'));
    await close();
  });

  test(name('a mistyped partner shows the API\'s suggestions as buttons'), async () => {
    const expected = (r) => {
      const url = new URL(r.url());
      return (r.status() === 400 && /^\/v1\/(agreements|stats\/pledges)$/.test(url.pathname) && url.searchParams.get('partner') === 'japn')
        || (r.status() === 404 && url.pathname === '/v1/partners/japn');
    };
    const { page, close } = await open(viewport, { expected });
    await typeFilter(page, '#f-partner', 'japn');
    await page.waitForFunction(() => !document.querySelector('#suggest').hidden, null, WAIT);
    assert.match(await page.textContent('#suggest'), /No partner “japn”\. Did you mean:/);
    assert.ok(!(await page.locator('#alert').isHidden()), 'the problem is shown');
    const choice = page.locator('#suggest-list button[data-code="JP"]');
    assert.equal(await choice.textContent(), 'Japan (JP)');
    await choice.focus();
    await page.keyboard.press('Enter');
    await rowsAre(page, ['ua-jp-2024']);
    assert.equal(await page.inputValue('#f-partner'), 'JP');
    assert.ok(await page.locator('#suggest').isHidden());
    await page.waitForFunction(() => document.querySelector('#alert').hidden, null, WAIT);
    await close();
  });
}
