
// The accords dashboard: plain ES2020, no dependencies (the words are in
// i18n.js, served first in the same file). Every piece of data is inserted as
// text (textContent / createElement), never as markup, and no inline styles
// are used, so the page works under a strict CSP.

const $ = (id) => document.getElementById(id);
const FILTERS = ['partner', 'area', 'year', 'status', 'currency', 'q'];
const SVG = 'http://www.w3.org/2000/svg';
/** Converted totals are in this currency (the ECB's rates are against it). */
const CONVERT_TO = 'EUR';
const CONVERTED = 'converted';
/** Agreements loaded at most (the API's pages are 500): enough for every agreement there is. */
const MAX_ROWS = 2000;
const STATUS_ORDER = ['negotiating', 'signed', 'ratified', 'in_force', 'expired', 'terminated'];
const SORT_KEYS = ['partner', 'date', 'status', 'amount'];
const LANG_KEY = 'accords.lang';

const state = {
  lang: 'en',
  items: [],           // every agreement matching the filters (up to MAX_ROWS)
  truncated: false,
  sort: { key: 'partner', desc: false },
  listAbort: null,     // aborts a list load overtaken by a newer one
  chartAbort: null,
  detailId: null,      // the agreement open in the dialog
  detail: null,
  stats: { partner: { items: [], converted: null }, year: { items: [], converted: null } },
  view: '',            // chosen by the user (kept in the URL): 'converted' or a currency; else automatic
  currencies: new Set(), // every pledge currency seen, for the filter
  names: new Map(),    // partner code -> {name, name_uk}, for chart labels
  revision: null,      // the store's latest change number, and when it was made
  revisionAt: null,
  past: null,          // the revision shown instead of now (kept in the URL), and when it was made
  pastAt: null,
  sinceAbort: null,
  errors: new Map(),   // alert messages by origin, so one success clears only its own
  opener: null,        // element to refocus when the dialog closes
  focusPledge: null,   // pledge to move to once the agreement opening is shown
};

// ---------- words ----------

/** The dashboard's own text in the chosen language (English where a word is missing). */
function t(key, ...args) {
  const v = WORDS[state.lang][key] ?? WORDS.en[key];
  return typeof v === 'function' ? v(...args) : (v ?? key);
}

const vocab = (v) => (v === null || v === undefined || v === '' ? '—'
  : (WORDS[state.lang].vocab[v] ?? WORDS.en.vocab[v] ?? String(v).replace(/_/g, ' ')));
const statusWord = (s) => (STATUS_ORDER.includes(s) ? t(`status_${s}`) : vocab(s));
const fieldLabel = (f) => WORDS[state.lang].field[f] ?? WORDS.en.field[f] ?? String(f).replace(/_/g, ' ');

/** A partner's name in the chosen language, as far as the API gave one. */
function partnerName(p) {
  if (!p) return '—';
  if (state.lang === 'uk' && p.name_uk) return p.name_uk;
  return p.name || p.code || '—';
}

function readLang() {
  try { return localStorage.getItem(LANG_KEY) === 'uk' ? 'uk' : 'en'; } catch (_) { return 'en'; }
}

function saveLang() {
  try { localStorage.setItem(LANG_KEY, state.lang); } catch (_) { /* private mode: not remembered */ }
}

/** Puts the static labels of the page (data-i18n*) into the chosen language. */
function translatePage() {
  document.documentElement.lang = state.lang;
  document.title = t('heading');
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of document.querySelectorAll('[data-i18n-aria-label]')) el.setAttribute('aria-label', t(el.dataset.i18nAriaLabel));
  for (const b of document.querySelectorAll('[data-lang]')) b.setAttribute('aria-pressed', String(b.dataset.lang === state.lang));
}

// ---------- small helpers ----------

/** Creates an element; children may be nodes, strings (as text) or null. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function s(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function debounce(fn, ms) {
  let timer = 0;
  const run = (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  run.now = (...args) => { clearTimeout(timer); fn(...args); };
  return run;
}

/** Only http(s) links are made clickable: a stored javascript: URL must not run. */
function link(url, text) {
  let ok = false;
  try { ok = ['http:', 'https:'].includes(new URL(url, location.href).protocol); } catch (_) { /* not a URL */ }
  return ok ? h('a', { href: url, rel: 'noopener noreferrer' }, text || url) : h('span', {}, text || url || '');
}

const compareText = (a, b) => a.localeCompare(b, state.lang, { sensitivity: 'base' });

// ---------- exact money ----------
// Amounts arrive as decimal strings with at most two decimals. They are
// summed as BigInt hundredths so no float rounding ever creeps in.

function toMinor(text) {
  const m = /^(\d+)(?:\.(\d{1,2})\d*)?$/.exec(String(text).trim());
  if (!m) return 0n;
  return BigInt(m[1]) * 100n + BigInt((m[2] || '').padEnd(2, '0'));
}

function formatMinor(minor) {
  const neg = minor < 0n;
  const abs = neg ? -minor : minor;
  // Ukrainian groups digits with a space and writes a decimal comma.
  const [group, point] = state.lang === 'uk' ? ['\u00a0', ','] : [',', '.'];
  const whole = (abs / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, group);
  const cents = abs % 100n;
  return (neg ? '-' : '') + whole + (cents ? point + cents.toString().padStart(2, '0') : '');
}

const money = (currency, minor) => `${currency} ${formatMinor(minor)}`;

/** The years a per-year pledge is promised for (0 if its range is not known). */
function perYearCount(p) {
  if (!Number.isInteger(p.year_from) || !Number.isInteger(p.year_to) || p.year_to < p.year_from) return 0;
  return p.year_to - p.year_from + 1;
}

/** How often a pledge counts in a total: each year of a per-year range, else once. */
const timesCounted = (p) => BigInt(p.basis === 'per_year' ? (perYearCount(p) || 1) : 1);

/**
 * Sums pledges per currency as the service counts them: nothing for a part
 * of another pledge (its whole is counted), a per-year amount once per year.
 * Returns [[currency, minor], ...] sorted by currency.
 */
function sumPledges(pledges) {
  const sums = new Map();
  for (const p of pledges || []) {
    if (p.part_of) continue; // counted through its whole, perhaps in another agreement
    sums.set(p.currency, (sums.get(p.currency) || 0n) + toMinor(p.amount) * timesCounted(p));
  }
  return [...sums].sort((a, b) => a[0].localeCompare(b[0]));
}

/**
 * An agreement's pledges in the chosen view, to sort by: the converted sum
 * (only what converts) or the total in the one currency; null when none.
 */
function amountKey(a, view) {
  let sum = null;
  for (const p of a.pledges || []) {
    if (p.part_of) continue;
    if (view === CONVERTED) {
      const c = p.converted;
      if (c && c.amount !== null && c.amount !== undefined) sum = (sum || 0n) + toMinor(c.amount) * timesCounted(p);
    } else if (p.currency === view) {
      sum = (sum || 0n) + toMinor(p.amount) * timesCounted(p);
    }
  }
  return sum;
}

// ---------- API and errors ----------

class ApiError extends Error {
  constructor(problem) {
    super(problem.detail || problem.title || 'request failed');
    this.problem = problem;
  }
}

/**
 * GETs a JSON document, asking for the chosen language. Returns the body, or
 * with `withHeaders` {body, headers}. A problem answer throws an ApiError.
 */
async function api(path, signal, withHeaders = false) {
  let res;
  try {
    res = await fetch(path, { headers: { Accept: 'application/json', 'Accept-Language': state.lang }, signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError({ title: t('networkError'), detail: t('networkDetail') });
  }
  const type = res.headers.get('content-type') || '';
  const body = type.includes('json') ? await res.json().catch(() => null) : null;
  if (!res.ok) {
    throw new ApiError(body && typeof body === 'object'
      ? body
      : { title: res.statusText, status: res.status, detail: t('answered', res.status, res.statusText) });
  }
  return withHeaders ? { body, headers: res.headers } : body;
}

/** Renders a problem+json document: its detail, then each field error. */
function problemNodes(problem) {
  const nodes = [h('p', {}, h('strong', {}, problem.title || t('error')), problem.status ? ` (${problem.status})` : '', ': ', problem.detail || '')];
  if (Array.isArray(problem.errors) && problem.errors.length) {
    nodes.push(h('ul', {}, problem.errors.map((e) => h('li', {}, h('code', {}, e.field || '?'), ': ', e.message || ''))));
  }
  return nodes;
}

function setError(origin, err) {
  if (err && err.name === 'AbortError') return;
  if (err) state.errors.set(origin, err.problem || { title: t('error'), detail: String(err.message || err) });
  else state.errors.delete(origin);
  const box = $('alert');
  box.replaceChildren();
  // The list and the charts fail together on a bad filter: show it once.
  const seen = new Set();
  for (const p of state.errors.values()) {
    const key = `${p.status}|${p.detail}|${JSON.stringify(p.errors || [])}`;
    if (seen.has(key)) continue;
    seen.add(key);
    append(box, problemNodes(p));
  }
  box.hidden = seen.size === 0;
}

// ---------- filters, sort and the URL ----------

function filterValues() {
  const form = $('filters');
  const out = {};
  for (const name of FILTERS) {
    const v = form.elements[name].value.trim();
    if (v) out[name] = v;
  }
  return out;
}

const query = (obj) => new URLSearchParams(obj).toString();

/** A read as the store stood at the revision shown, or as it stands now. */
function at(path) {
  if (state.past === null) return path;
  return `${path}${path.includes('?') ? '&' : '?'}revision=${state.past}`;
}
const sortParam = () => `${state.sort.desc ? '-' : ''}${state.sort.key}`;

/** Mirrors the view into the address bar so it can be shared. */
function saveUrl() {
  const p = new URLSearchParams(filterValues());
  if (state.view) p.set('chart_currency', state.view);
  if (state.sort.key !== 'partner' || state.sort.desc) p.set('sort', sortParam());
  if (state.detailId) p.set('open', state.detailId);
  if (state.past !== null) p.set('revision', String(state.past));
  const qs = p.toString();
  history.replaceState(null, '', location.pathname + (qs ? '?' + qs : '') + location.hash);
}

/** A value a select does not offer yet (the list may not be loaded) stays selectable. */
function selectValue(el, v) {
  if (v && ![...el.options].some((o) => o.value === v)) el.append(h('option', { value: v }, v));
  el.value = v;
}

function readUrl() {
  const p = new URLSearchParams(location.search);
  const form = $('filters');
  for (const name of FILTERS) {
    const v = p.get(name);
    if (v === null) continue;
    const el = form.elements[name];
    if (el.tagName === 'SELECT') selectValue(el, v);
    else el.value = v;
  }
  state.view = p.get('chart_currency') || '';
  const sort = /^(-?)(\w+)$/.exec(p.get('sort') || '');
  if (sort && SORT_KEYS.includes(sort[2])) state.sort = { key: sort[2], desc: sort[1] === '-' };
  const past = p.get('revision');
  state.past = past !== null && /^\d+$/.test(past) ? Number(past) : null;
  return p.get('open');
}

/** The CSV links give what is shown: the same filters, in the table's order where the API has it. */
function updateDownloads() {
  const f = filterValues();
  const apiSort = { partner: 'partner', date: 'signed_on' }[state.sort.key] || 'partner';
  const sort = `${state.sort.desc && state.sort.key in { partner: 1, date: 1 } ? '-' : ''}${apiSort}`;
  $('csv-agreements').href = at(`/v1/agreements?${query({ ...f, sort, format: 'csv' })}`);
  $('csv-pledges').href = at(`/v1/agreements?${query({ ...f, sort, format: 'csv', rows: 'pledges' })}`);
  const view = currentView();
  const chart = { group_by: 'partner', ...f, format: 'csv' };
  if (view === CONVERTED) chart.convert = CONVERT_TO;
  $('csv-chart').href = at(`/v1/stats/pledges?${query(chart)}`);
}

function refresh() {
  saveUrl();
  updateDownloads();
  loadList();
  loadCharts();
  loadSince();
}

// ---------- partner suggestions ----------

/** The partner references typed in the filter. */
const partnerRefs = () => $('f-partner').value.split(',').map((x) => x.trim()).filter(Boolean);

function hideSuggestions() {
  $('suggest').hidden = true;
  $('suggest-list').replaceChildren();
}

/**
 * A partner the API does not know: its 404 lists the closest matches, each
 * offered as a button that puts it in the filter in place of the typo.
 */
async function suggestPartners(problem) {
  if (!(problem.errors || []).some((e) => e.field === 'partner')) { hideSuggestions(); return; }
  const typed = partnerRefs();
  const unknown = [];
  for (const ref of typed) {
    try {
      await api(`/v1/partners/${encodeURIComponent(ref)}`);
    } catch (err) {
      if (err.problem && Array.isArray(err.problem.closest_matches)) unknown.push({ ref, matches: err.problem.closest_matches });
    }
  }
  if (partnerRefs().join(',') !== typed.join(',')) return; // typed on meanwhile
  const box = $('suggest');
  const list = $('suggest-list');
  list.replaceChildren();
  if (!unknown.length) { hideSuggestions(); return; }
  const [first] = unknown;
  $('suggest-h').textContent = first.matches.length ? t('suggestHead', first.ref) : t('suggestNone', first.ref);
  for (const m of first.matches) {
    const name = partnerName(m);
    const b = h('button', { type: 'button', class: 'secondary suggestion', 'data-code': m.code }, `${name} (${m.code})`);
    b.addEventListener('click', () => {
      $('f-partner').value = partnerRefs().map((r) => (r === first.ref ? m.code : r)).join(', ');
      hideSuggestions();
      $('f-partner').focus();
      refresh();
    });
    list.append(b);
  }
  box.hidden = false;
}

// ---------- the table ----------

/** Marked facts of an agreement and its pledges: [{status, field}] */
function markersOf(a) {
  const out = [];
  for (const [field, m] of Object.entries(a.markers || {})) out.push({ status: m.status, field });
  for (const p of a.pledges || []) for (const [field, m] of Object.entries(p.markers || {})) out.push({ status: m.status, field, pledge: p.id });
  return out;
}

function markerBadges(a) {
  const marks = markersOf(a);
  return ['contested', 'unverified'].map((status) => {
    const mine = marks.filter((m) => (m.status === 'contested' ? 'contested' : 'unverified') === status);
    if (!mine.length) return null;
    const fields = [...new Set(mine.map((m) => (m.pledge ? `${fieldLabel(m.field)} (${m.pledge})` : fieldLabel(m.field))))];
    return h('span', { class: `flag flag-${status}` }, h('span', { class: 'badge' }, t(`badge_${status}`)), ' ', h('span', { class: 'small' }, fields.join(', ')));
  });
}

function pledgesCell(a) {
  const sums = sumPledges(a.pledges);
  if (sums.length) return h('ul', { class: 'plain' }, sums.map(([c, m]) => h('li', {}, money(c, m))));
  return h('span', { class: 'muted' }, a.pledges && a.pledges.length ? t('countedElsewhere') : t('noStatedAmount'));
}

function row(a) {
  const open = h('a', { href: `?open=${encodeURIComponent(a.id)}`, class: 'open' }, a.title || a.id);
  open.addEventListener('click', (e) => { e.preventDefault(); openDetail(a.id, open); });
  const badges = markerBadges(a).filter(Boolean);
  const tr = h('tr', { 'data-id': a.id },
    h('td', { 'data-label': t('col_partner'), class: 'c-partner' }, partnerName(a.partner)),
    h('td', { 'data-label': t('col_date'), class: 'nowrap c-date' }, a.signed_on ? h('time', { datetime: a.signed_on }, a.signed_on) : t('notSigned')),
    h('td', { 'data-label': t('title'), class: 'c-title' }, h('div', {}, open, badges.length ? h('div', { class: 'flags' }, badges) : null)),
    h('td', { 'data-label': t('col_status'), class: 'c-status' }, h('div', {}, h('span', { class: `status status-${a.status}` }, statusWord(a.status)))),
    h('td', { 'data-label': t('col_amount'), class: 'num c-amount' }, pledgesCell(a)));
  // A click anywhere on the row opens it too (the title link is the keyboard target).
  tr.addEventListener('click', (e) => {
    if (!e.target.closest('a, button') && !getSelection().toString()) openDetail(a.id, open);
  });
  return tr;
}

/** Orders the agreements by the chosen column; unknown values (no date, no amount) always last. */
function sorted(items) {
  const { key, desc } = state.sort;
  const view = currentView();
  const byPartner = (a, b) => compareText(partnerName(a.partner), partnerName(b.partner))
    || String(a.signed_on || '').localeCompare(String(b.signed_on || '')) || a.id.localeCompare(b.id);
  const value = {
    partner: () => 0,
    date: (a) => a.signed_on || null,
    status: (a) => (STATUS_ORDER.includes(a.status) ? STATUS_ORDER.indexOf(a.status) : STATUS_ORDER.length),
    amount: (a) => amountKey(a, view),
  }[key];
  const keyed = items.map((a) => ({ a, v: value(a) }));
  keyed.sort((x, y) => {
    if (key === 'partner') return desc ? byPartner(y.a, x.a) : byPartner(x.a, y.a);
    if (x.v === null && y.v !== null) return 1;
    if (y.v === null && x.v !== null) return -1;
    const c = x.v === y.v || x.v === null ? 0 : (x.v < y.v ? -1 : 1);
    return (desc ? -c : c) || byPartner(x.a, y.a);
  });
  return keyed.map((k) => k.a);
}

function viewName(view) {
  if (view === CONVERTED) return t('view_converted', CONVERT_TO);
  return view ? t('view_single', view) : t('noPledges');
}

/** The sort select and the column buttons show the same choice. */
function renderSortControls() {
  const sel = $('sort');
  sel.replaceChildren(...SORT_KEYS.flatMap((key) => [false, true].map((desc) =>
    h('option', { value: `${desc ? '-' : ''}${key}` }, t(`sort_${key}`)[desc ? 1 : 0]))));
  sel.value = sortParam();
  for (const th of document.querySelectorAll('#list thead th[data-sort]')) {
    const key = th.dataset.sort;
    const on = state.sort.key === key;
    th.setAttribute('aria-sort', on ? (state.sort.desc ? 'descending' : 'ascending') : 'none');
    const b = th.querySelector('button');
    b.replaceChildren(t(`col_${key}`), h('span', { class: 'arrow', 'aria-hidden': 'true' }, on ? (state.sort.desc ? ' ▼' : ' ▲') : ' ↕'));
  }
}

function renderTable() {
  renderSortControls();
  $('list-caption').textContent = t('caption', viewName(currentView()));
  const body = $('list-body');
  // A keyboard user on a row keeps the focus there when a live update redraws the table.
  const focused = document.activeElement && document.activeElement.closest('#list-body tr[data-id]');
  const rows = sorted(state.items).map(row);
  body.replaceChildren(...rows);
  if (!rows.length) body.append(h('tr', {}, h('td', { colspan: 5, class: 'empty' }, t('noMatch'))));
  const again = focused && body.querySelector(`tr[data-id="${CSS.escape(focused.dataset.id)}"] a.open`);
  if (again) again.focus({ preventScroll: true });
}

function setSort(key, desc) {
  state.sort = { key, desc };
  saveUrl();
  updateDownloads();
  renderTable();
}

/** Loads every agreement that matches (page by page), then shows them in the chosen order. */
async function loadList() {
  if (state.listAbort) state.listAbort.abort();
  const ctl = new AbortController();
  state.listAbort = ctl;
  const fields = 'id,partner,title,status,signed_on,pledges,markers';
  const params = { ...filterValues(), sort: 'partner', limit: 500, fields, convert: CONVERT_TO };
  $('list').setAttribute('aria-busy', 'true');
  $('list-status').textContent = t('loading');
  try {
    const items = [];
    let cursor = null;
    let revision = null;
    do {
      const page = await api(at(`/v1/agreements?${query(cursor ? { ...params, cursor } : params)}`), ctl.signal, true);
      if (revision === null) revision = Number(page.headers.get('accords-revision')) || revisionOf(page.headers.get('etag'));
      items.push(...page.body.items);
      cursor = page.body.next_cursor || null;
    } while (cursor && items.length < MAX_ROWS);
    state.items = items;
    state.truncated = !!cursor;
    for (const a of items) if (a.partner && a.partner.code) state.names.set(a.partner.code, a.partner);
    renderTable();
    renderFigures();
    $('list-status').textContent = t('listStatus', items.length, state.truncated);
    setError('list', null);
    hideSuggestions();
    if (revision !== null && state.past === null) loadRevision(revision);
  } catch (err) {
    if (err.name === 'AbortError') return;
    state.items = [];
    state.truncated = false;
    $('list-body').replaceChildren();
    renderFigures();
    $('list-status').textContent = t('listFailed');
    setError('list', err);
    if (err.problem) suggestPartners(err.problem);
  } finally {
    if (state.listAbort === ctl) { state.listAbort = null; $('list').removeAttribute('aria-busy'); }
  }
}

// ---------- data as of ----------

/** A list's ETag names the store's revision: W/"r812-…". */
function revisionOf(etag) {
  const m = /r(\d+)/.exec(etag || '');
  return m ? Number(m[1]) : null;
}

/** Finds when the change that made this revision was made (the change feed). */
async function loadRevision(revision) {
  if (revision === state.revision && state.revisionAt) return;
  if (revision === 0) { state.revision = 0; state.revisionAt = null; renderAsOf(); return; }
  try {
    const at = await changeAt(revision);
    if (at !== null && revision >= (state.revision || 0)) {
      state.revision = revision;
      state.revisionAt = at;
      renderAsOf();
    }
  } catch (err) {
    setError('changes', err);
  }
}

/** When the change that made a revision was made, from the change feed (null if unknown). */
async function changeAt(revision) {
  if (!revision) return null;
  const feed = await api(`/v1/changes?${query({ since: revision - 1, limit: 1 })}`);
  const change = (feed.items || [])[0];
  return change && change.seq === revision ? change.at : null;
}

function timeNode(id, iso) {
  const at = new Date(iso);
  const time = Number.isNaN(at.getTime()) ? String(iso)
    : `${new Intl.DateTimeFormat(state.lang === 'uk' ? 'uk-UA' : 'en-GB', { dateStyle: 'medium', timeStyle: 'medium', timeZone: 'UTC' }).format(at)} UTC`;
  return h('time', { id, datetime: iso }, time);
}

function renderAsOf() {
  const box = $('as-of');
  if (state.past !== null) {
    box.replaceChildren(...t('asPublished', state.pastAt ? timeNode('past-time', state.pastAt) : null, state.past).flat());
    box.dataset.revision = String(state.past);
    return;
  }
  if (!state.revision) { box.textContent = state.revision === 0 ? t('asOfNone') : ''; return; }
  // The time is a <time> element inside the sentence, not text.
  box.replaceChildren(...t('asOf', timeNode('as-of-time', state.revisionAt), state.revision));
  box.dataset.revision = String(state.revision);
}

// ---------- headline figures ----------

function figure(label, value, detail, id) {
  return h('div', { class: 'figure', id }, h('dt', {}, label), h('dd', {}, h('span', { class: 'figure-value' }, value), detail ? h('span', { class: 'figure-detail small muted' }, detail) : null));
}

function renderFigures() {
  const items = state.items;
  const partners = new Set(items.map((a) => a.partner && a.partner.code).filter(Boolean));
  const marks = items.flatMap(markersOf);
  const contested = marks.filter((m) => m.status === 'contested').length;
  const view = currentView();
  let total = t('fig_none');
  let totalDetail = null;
  if (view === CONVERTED) {
    const conv = state.stats.partner.converted;
    if (conv) {
      let sum = null;
      let left = 0;
      for (const it of conv.items || []) {
        if (it.total !== null && it.total !== undefined) sum = (sum || 0n) + toMinor(it.total);
        left += it.unconverted_count || 0;
      }
      if (sum !== null) total = money(CONVERT_TO, sum);
      if (left) totalDetail = t('fig_notConverted', left);
    }
  } else if (view) {
    const mine = state.stats.partner.items.filter((it) => it.currency === view);
    if (mine.length) total = money(view, mine.reduce((m, it) => m + toMinor(it.total), 0n));
    const others = new Set(state.stats.partner.items.map((it) => it.currency).filter((c) => c !== view));
    if (others.size) totalDetail = t('fig_otherCurrencies', others.size);
  }
  $('figures').replaceChildren(
    figure(t('fig_agreements'), String(items.length), null, 'fig-agreements'),
    figure(t('fig_partners'), String(partners.size), null, 'fig-partners'),
    figure(t('fig_total', viewName(view)), total, totalDetail, 'fig-total'),
    figure(t('fig_marked'), String(marks.length), marks.length ? t('fig_markedDetail', contested, marks.length - contested) : null, 'fig-marked'));
}

// ---------- charts ----------

async function loadCharts() {
  if (state.chartAbort) state.chartAbort.abort();
  const ctl = new AbortController();
  state.chartAbort = ctl;
  const f = filterValues();
  try {
    // One request per grouping answers both views: the per-currency items and the converted totals.
    const [byPartner, byYear] = await Promise.all([
      api(at(`/v1/stats/pledges?${query({ group_by: 'partner', ...f, convert: CONVERT_TO })}`), ctl.signal),
      api(at(`/v1/stats/pledges?${query({ group_by: 'year', ...f, convert: CONVERT_TO })}`), ctl.signal),
    ]);
    state.stats = {
      partner: { items: byPartner.items || [], converted: byPartner.converted || null },
      year: { items: byYear.items || [], converted: byYear.converted || null },
    };
    setError('charts', null);
  } catch (err) {
    if (err.name === 'AbortError') return;
    state.stats = { partner: { items: [], converted: null }, year: { items: [], converted: null } };
    setError('charts', err);
  } finally {
    if (state.chartAbort === ctl) state.chartAbort = null;
  }
  fillCurrencies();
  drawCharts();
  renderFigures();
  renderTable();
  updateDownloads();
}

/** Were exchange rates used (not only EUR counted as EUR)? Then the converted view is worth showing first. */
function ratesLoaded() {
  const conv = state.stats.partner.converted;
  return !!(conv && (conv.rates || []).length);
}

/** What the charts show: 'converted' or one currency (see fillCurrencies). */
function currentView() {
  const sel = $('chart-currency');
  return sel.value || '';
}

/**
 * Offers the converted view and every currency present; shows the user's
 * choice if still offered, else the converted view when rates were used,
 * else the currency with the most items.
 */
function fillCurrencies() {
  const counts = new Map();
  for (const it of [...state.stats.partner.items, ...state.stats.year.items]) counts.set(it.currency, (counts.get(it.currency) || 0) + 1);
  for (const c of counts.keys()) state.currencies.add(c);
  const list = [...counts.keys()].sort();
  const best = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0];
  const offered = list.length ? [CONVERTED, ...list] : [];
  const automatic = ratesLoaded() ? CONVERTED : (best ? best[0] : '');
  const current = state.view && offered.includes(state.view) ? state.view : automatic;
  const sel = $('chart-currency');
  sel.replaceChildren(...offered.map((c) => h('option', { value: c }, c === CONVERTED ? t('view_converted', CONVERT_TO) : c)));
  sel.disabled = offered.length === 0;
  if (!offered.length) sel.append(h('option', { value: '' }, t('noPledges')));
  sel.value = current;
  // The filter offers every currency seen so far, so choosing one never hides the others.
  const filter = $('f-currency');
  const chosen = filter.value;
  filter.replaceChildren(h('option', { value: '' }, t('any')), ...[...state.currencies].sort().map((c) => h('option', { value: c }, c)));
  selectValue(filter, chosen);
}

function partnerLabel(code) {
  return code ? partnerName(state.names.get(code) || { code }) : t('unknown');
}

function drawCharts() {
  const view = currentView();
  const byAmount = (a, b) => {
    if (a.minor === null || b.minor === null) return (a.minor === null) - (b.minor === null) || compareText(a.label, b.label);
    return b.minor > a.minor ? 1 : b.minor < a.minor ? -1 : compareText(a.label, b.label);
  };
  const byYear = (a, b) => a.y - b.y;
  let partners;
  let years;
  let cur;
  if (view === CONVERTED) {
    cur = CONVERT_TO;
    const pick = (conv) => (conv ? conv.items || [] : []).map((it) => ({
      minor: it.total === null || it.total === undefined ? null : toMinor(it.total),
      count: it.count || 0, left: it.unconverted_count || 0, leftBy: it.unconverted_total_by_currency || {},
    }));
    partners = pick(state.stats.partner.converted).map((d, i) => ({ ...d, label: partnerLabel(state.stats.partner.converted.items[i].partner) })).sort(byAmount);
    years = pick(state.stats.year.converted).map((d, i) => {
      const y = state.stats.year.converted.items[i].year;
      return { ...d, label: y === null || y === undefined ? t('yearNotStated') : String(y), y: y ?? Infinity };
    }).sort(byYear);
  } else {
    cur = view;
    const pick = (items) => items.filter((it) => it.currency === cur);
    partners = pick(state.stats.partner.items)
      .map((it) => ({ label: partnerLabel(it.partner), minor: toMinor(it.total), count: it.count, years: it.years, left: 0 }))
      .sort(byAmount);
    years = pick(state.stats.year.items)
      .map((it) => ({ label: it.year === null || it.year === undefined ? t('yearNotStated') : String(it.year), minor: toMinor(it.total), count: it.count, years: it.years, y: it.year ?? Infinity, left: 0 }))
      .sort(byYear);
  }
  $('chart-note').textContent = view === CONVERTED ? t('chartNoteConverted', CONVERT_TO) : t('chartNoteSingle');
  renderRates(view);
  barChart($('by-partner'), t('byPartner'), t('col_partner'), cur, partners);
  barChart($('by-year'), t('byYear'), t('colYear'), cur, years);
}

/** The converted view names the rates it rests on, and every pledge it leaves out and why. */
function renderRates(view) {
  const box = $('rates-note');
  const conv = state.stats.partner.converted;
  if (view !== CONVERTED || !conv) { box.hidden = true; box.replaceChildren(); return; }
  const rates = conv.rates || [];
  const left = (conv.items || []).reduce((n, it) => n + (it.unconverted_count || 0), 0);
  const leftBy = new Map();
  const reasons = new Set();
  for (const it of conv.items || []) {
    for (const [c, amount] of Object.entries(it.unconverted_total_by_currency || {})) leftBy.set(c, (leftBy.get(c) || 0n) + toMinor(amount));
    for (const r of it.unconverted_reasons || []) reasons.add(r);
  }
  box.replaceChildren(
    h('p', { id: 'rate-basis' }, h('strong', {}, t('ratesUsed')), ' ', rates.length ? '' : t('noRatesUsed')),
    rates.length ? h('ul', { class: 'rates' }, rates.map((r) => h('li', {}, `${r.from} ${r.year}: ${r.rate} — ${r.rate_basis || ''}`))) : null,
    left ? h('p', { id: 'not-converted', class: 'warn' }, h('strong', {}, t('notConverted', left)), ' (',
      [...leftBy].sort((a, b) => a[0].localeCompare(b[0])).map(([c, m]) => money(c, m)).join('; '), '). ',
      reasons.size ? [t('reasons'), ' ', [...reasons].join('; '), '.'] : null) : null);
  box.hidden = false;
}

/** "3 pledges", and how many years per-year pledges were counted for (the API's optional `years`). */
function countText(d) {
  return t('countText', d.count, d.years || 0);
}

const valueText = (cur, d) => [d.minor === null ? t('noRate') : money(cur, d.minor), d.left ? ` (${t('plusUnconverted', d.left)})` : ''].join('');

/**
 * Horizontal bars: a label line, then a bar whose width is the share of the
 * largest total. The ratio is taken in BigInt (in thousandths) and only then
 * turned into a Number for the pixel width. Widths are percentages so the
 * chart fits any screen without scaling its text.
 */
function barChart(box, title, keyName, cur, data) {
  box.replaceChildren();
  if (!data.length) {
    box.append(h('p', { class: 'muted' }, t('chartEmpty', cur)));
    return;
  }
  const max = data.reduce((m, d) => (d.minor !== null && d.minor > m ? d.minor : m), 1n);
  const rowH = 38;
  const svg = s('svg', { class: 'bars', width: '100%', height: data.length * rowH + 4, role: 'img' });
  svg.setAttribute('aria-label', t('chartAria', title, cur, data.map((d) => `${d.label}: ${valueText(cur, d)}`).join('; ')));
  data.forEach((d, i) => {
    const y = i * rowH;
    const pct = d.minor === null ? 0 : Number((d.minor * 100000n) / max) / 1000; // 0..100, to 3 decimals
    const g = s('g', {});
    const tip = s('title', {});
    tip.textContent = `${d.label}: ${valueText(cur, d)} (${countText(d)})`;
    const label = s('text', { x: 0, y: y + 14, class: 'bar-label' });
    label.textContent = d.label;
    const value = s('tspan', { class: 'bar-value', dx: 8 });
    value.textContent = valueText(cur, d);
    label.append(value);
    g.append(tip, s('rect', { x: 0, y: y + 20, width: '100%', height: 12, rx: 2, class: 'bar-track' }));
    if (d.minor !== null) g.append(s('rect', { x: 0, y: y + 20, width: `${Math.max(pct, 0.4)}%`, height: 12, rx: 2, class: 'bar' }));
    g.append(label);
    svg.append(g);
  });
  box.append(svg);
  // The exact figures, as a table for anyone who prefers or needs one.
  const table = h('table', { class: 'figures' },
    h('caption', {}, `${title}, ${cur}`),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, keyName), h('th', { scope: 'col', class: 'num' }, t('colTotal')), h('th', { scope: 'col', class: 'num' }, t('pledges')))),
    h('tbody', {}, data.map((d) => h('tr', {},
      h('th', { scope: 'row' }, d.label), h('td', { class: 'num' }, valueText(cur, d)), h('td', { class: 'num' }, countText(d))))));
  box.append(h('details', {}, h('summary', {}, t('showTable')), h('div', { class: 'table-wrap' }, table)));
}

// ---------- detail dialog ----------

function years(p) {
  if (p.year_from && p.year_to) return p.year_from === p.year_to ? String(p.year_from) : `${p.year_from}–${p.year_to}`;
  if (p.year_from) return t('fromYear', p.year_from);
  if (p.year_to) return t('untilYear', p.year_to);
  return t('yearsNotStated');
}

/** "ISK 4,000,000,000 a year, 2024–2028 (5 years)" or "EUR 977,000,000 · 2024". */
function pledgeAmount(p) {
  const amount = money(p.currency, toMinor(p.amount));
  if (p.basis !== 'per_year') return [h('strong', {}, amount), ` · ${years(p)}`];
  const n = perYearCount(p);
  return [h('strong', {}, `${amount}${t('aYear')}`), n ? `, ${years(p)} (${t('nYears', n)})` : `, ${t('yearsNotStated')}`];
}

// Anchors inside the dialog: ids are prefixed so they never clash with the page.
const sourceAnchor = (id) => `src-${id}`;
const pledgeAnchor = (id) => `pledge-${id}`;

/** Moves to an element of the open dialog and gives it the focus (it has tabindex -1). */
function goTo(anchorId) {
  const el = document.getElementById(anchorId);
  if (!el) return false;
  el.scrollIntoView({ block: 'nearest' });
  el.focus({ preventScroll: true });
  return true;
}

/** A link to a source in the dialog's list of sources. */
function sourceRef(a, id) {
  const src = (a.sources || []).find((x) => x.id === id);
  const text = src ? (src.publisher || src.title || id) : id;
  const el = h('a', { href: `#${sourceAnchor(id)}`, class: 'ref' }, text);
  el.addEventListener('click', (e) => { if (goTo(sourceAnchor(id))) e.preventDefault(); });
  return el;
}

/**
 * A link to a pledge: in this agreement it moves there; in another one it
 * opens that agreement (asking the API which one) and moves to the pledge.
 */
function pledgeRef(a, id) {
  const own = (a.pledges || []).find((x) => x.id === id);
  const guess = /^(.+)-p\d+$/.exec(id);
  const href = own || !guess ? `#${pledgeAnchor(id)}` : `?open=${encodeURIComponent(guess[1])}`;
  const el = h('a', { href, class: 'ref' }, id);
  el.addEventListener('click', async (e) => {
    e.preventDefault();
    if (goTo(pledgeAnchor(id))) return;
    try {
      const p = await api(`/v1/pledges/${encodeURIComponent(id)}`);
      state.focusPledge = id;
      openDetail(p.agreement_id, state.opener);
    } catch (err) {
      const box = $('detail-alert');
      box.replaceChildren(...problemNodes(err.problem || { title: t('error'), detail: String(err.message) }));
      box.hidden = false;
    }
  });
  return own ? [el, h('span', { class: 'muted' }, ` (${money(own.currency, toMinor(own.amount))}${own.basis === 'per_year' ? t('aYear') : ''})`)] : el;
}

/** "a, b and c" with nodes. */
function joined(items) {
  const out = [];
  items.forEach((x, i) => out.push(i === 0 ? '' : i === items.length - 1 ? t('and') : ', ', x));
  return out;
}

/**
 * The visible mark of a contested or unverified value: a text badge (not
 * colour alone), the note, and the sources on each side as links.
 */
function markerNode(a, field, m, named) {
  const status = m.status === 'contested' ? 'contested' : 'unverified';
  const sides = [];
  if (m.sources_for && m.sources_for.length) sides.push(h('span', {}, t('sourcesFor'), joined(m.sources_for.map((id) => sourceRef(a, id))), '.'));
  if (m.sources_against && m.sources_against.length) sides.push(h('span', {}, t('against'), joined(m.sources_against.map((id) => sourceRef(a, id))), '.'));
  return h('div', { class: `marker marker-${status}`, role: 'note' },
    h('span', { class: 'badge' }, t(`badge_${status}`)),
    named ? h('strong', {}, ` ${fieldLabel(field)}:`) : null,
    ' ', m.note || '',
    sides.length ? h('span', { class: 'marker-sources' }, sides.map((x) => [' ', x])) : null);
}

/**
 * Markers of one record, each given out once, next to its value; `rest`
 * gives out what is left (a field shown nowhere else), always named.
 */
function markerSet(a, markers, named) {
  const left = new Map(Object.entries(markers || {}));
  const give = (fields, withName) => fields.filter((f) => left.has(f)).map((f) => {
    const m = left.get(f);
    left.delete(f);
    return markerNode(a, f, m, withName);
  });
  return {
    take: (...fields) => give(fields, named),
    rest: () => give([...left.keys()], true),
  };
}

/** A source's link, publisher and date, and its id. */
const sourceLine = (src) => [
  link(src.url, src.title || src.url),
  src.publisher || src.published_on ? h('span', { class: 'muted' }, ' — ', [src.publisher, src.published_on].filter(Boolean).join(', ')) : null,
  h('span', { class: 'muted small' }, ` [${src.id}]`),
];

/** A source of the agreement, with what it supports: pledges (as links) and fields. */
function sourceItem(a, src) {
  const pledges = src.pledges || [];
  const fields = src.fields || [];
  return h('li', { id: sourceAnchor(src.id), tabindex: '-1' },
    sourceLine(src),
    pledges.length || fields.length
      ? h('p', { class: 'supports' }, t('supports'),
        pledges.length ? [t('supportsPledges', pledges.length), joined(pledges.map((id) => pledgeRef(a, id)))] : null,
        pledges.length && fields.length ? '; ' : null,
        fields.length ? fields.map((f) => fieldLabel(f)).join(', ') : null, '.')
      : h('p', { class: 'supports muted' }, t('notLinked')));
}

/** A pledge's own sources: those the API nests in it, else those of the agreement naming it. */
const pledgeSources = (a, pl) => (Array.isArray(pl.sources) ? pl.sources : (a.sources || []).filter((x) => (x.pledges || []).includes(pl.id)));

function pledgeItem(a, pl) {
  const marks = markerSet(a, pl.markers, true);
  const sources = pledgeSources(a, pl);
  const parts = pl.parts || [];
  return h('li', { id: pledgeAnchor(pl.id), tabindex: '-1' },
    h('p', {}, pledgeAmount(pl), ` · ${vocab(pl.kind)}`,
      pl.measure ? ` · ${vocab(pl.measure)}` : '',
      pl.in_agreement_text === true ? t('inText') : pl.in_agreement_text === false ? t('notInText') : '',
      h('span', { class: 'muted small' }, ` [${pl.id}]`)),
    marks.take('amount', 'currency', 'basis', 'year_from', 'year_to', 'kind', 'measure', 'in_agreement_text'),
    pl.part_of ? h('p', { class: 'relation' }, t('partOf'), pledgeRef(a, pl.part_of), t('partOfTail')) : null,
    marks.take('part_of'),
    parts.length ? h('p', { class: 'relation' }, t('includes'), joined(parts.map((id) => pledgeRef(a, id))), t('includesTail', parts.length)) : null,
    pl.description ? h('p', {}, pl.description) : null,
    marks.take('description'),
    marks.rest(),
    pl.note ? h('p', { class: 'note' }, t('note'), pl.note) : null,
    // Named briefly here; each links to its full entry under Sources.
    sources.length ? h('p', { class: 'supports' }, t('sourcesLine'), joined(sources.map((x) => sourceRef(a, x.id))), '.') : null);
}

/** City, country, venue and event, as far as they are known. */
function placeNode(place) {
  if (!place) return null;
  const known = place.country && state.names.get(place.country);
  const country = place.country ? (known ? `${partnerName(known)} (${place.country})` : place.country) : null;
  const items = [['place_city', place.city], ['place_country', country], ['place_venue', place.venue], ['place_event', place.event]]
    .filter(([, v]) => v)
    .map(([k, v]) => h('li', {}, h('span', { class: 'muted' }, `${t(k)}: `), v));
  return items.length ? h('ul', { class: 'inline' }, items) : null;
}

function pair(dl, term, value, marks) {
  const empty = value === null || value === undefined || value === '' || (Array.isArray(value) && !value.flat().some(Boolean));
  dl.append(h('dt', {}, term), h('dd', {}, empty ? h('span', { class: 'muted' }, t('notStated')) : value, marks && marks.length ? marks : null));
}

function renderDetail(a) {
  const p = a.partner || {};
  const marks = markerSet(a, a.markers, false);
  const dl = h('dl', { class: 'facts' });
  const other = state.lang === 'uk' ? p.name : p.name_uk;
  pair(dl, t('f_partner'), [partnerName(p), other ? h('span', { lang: state.lang === 'uk' ? 'en' : 'uk' }, ` (${other})`) : null, p.code ? h('span', { class: 'muted' }, ` · ${p.code}`) : null]);
  pair(dl, t('f_kind'), a.kind && vocab(a.kind), marks.take('kind'));
  pair(dl, t('f_status'), a.status && h('span', { class: `status status-${a.status}` }, statusWord(a.status)), marks.take('status'));
  pair(dl, t('f_signed_on'), a.signed_on, marks.take('signed_on'));
  pair(dl, t('f_signed_at'), a.signed_at, marks.take('signed_at'));
  const place = placeNode(a.signed_place);
  if (place || (a.markers && a.markers.signed_place)) pair(dl, t('f_place'), place, marks.take('signed_place'));
  pair(dl, t('f_term'), a.term_years ? t('termYears', a.term_years) : null, marks.take('term_years'));
  pair(dl, t('f_expires_on'), a.expires_on, marks.take('expires_on'));
  pair(dl, t('f_legally_binding'), a.legally_binding === true ? t('yes') : a.legally_binding === false ? t('no') : t('unknown'), marks.take('legally_binding'));
  if (a.text_url || (a.markers && a.markers.text_url)) pair(dl, t('f_text'), a.text_url ? link(a.text_url, t('theText')) : null, marks.take('text_url'));

  const sums = sumPledges(a.pledges);
  const none = () => h('p', { class: 'muted' }, t('noneRecorded'));
  const body = [
    h('h2', { id: 'detail-title' }, a.title || a.id),
    marks.take('title'),
    dl,
    a.summary ? [h('h3', {}, t('h_summary')), h('p', {}, a.summary)] : null,
    marks.take('summary'),
    h('h3', {}, t('h_signatories')),
    a.signatories && a.signatories.length
      ? h('ul', {}, a.signatories.map((x) => h('li', {}, x.name, x.role ? `, ${x.role}` : '', x.side ? h('span', { class: 'muted' }, ` (${vocab(x.side)})`) : null)))
      : none(),
    marks.take('signatories'),
    h('h3', {}, t('h_areas')),
    a.areas && a.areas.length
      ? h('ul', {}, a.areas.map((x) => h('li', {}, h('strong', {}, x.name || x.code), x.detail ? ` — ${x.detail}` : '')))
      : none(),
    marks.take('areas'),
    h('h3', {}, t('h_pledges'), sums.length ? h('span', { class: 'muted' }, t('pledgesTotal', sums.map(([c, m]) => money(c, m)).join(', '))) : null),
    sums.length ? h('p', { class: 'muted small' }, t('totalsNote')) : null,
    a.pledges && a.pledges.length
      ? h('ul', { class: 'pledges' }, a.pledges.map((pl) => pledgeItem(a, pl)))
      : none(),
    h('h3', {}, t('h_sources')),
    a.sources && a.sources.length
      ? h('ul', { class: 'sources' }, a.sources.map((x) => sourceItem(a, x)))
      : none(),
    // A marker on a field the dialog does not show still shows.
    marks.rest(),
    h('p', { class: 'muted small' }, t('version', a.version ?? '?'), a.updated_at ? t('updated', a.updated_at) : '', ' · ', link(`/v1/agreements/${encodeURIComponent(a.id)}`, t('asJson'))),
  ];
  $('detail-body').replaceChildren(...body.flat().filter(Boolean));
  // Arrived here from a "part of" / "includes" link in another agreement.
  if (state.focusPledge) {
    const id = state.focusPledge;
    state.focusPledge = null;
    goTo(pledgeAnchor(id));
  }
}

async function loadDetail() {
  const id = state.detailId;
  if (!id) return;
  const box = $('detail-alert');
  try {
    const path = `/v1/agreements/${encodeURIComponent(id)}`;
    const past = state.past;
    const [a, diff] = await Promise.all([
      api(at(path)),
      past === null ? null : api(`${path}/diff?${query({ from: past })}`),
    ]);
    if (state.detailId !== id) return; // closed or replaced meanwhile
    state.detail = a;
    box.hidden = true;
    renderDetail(a);
    if (diff) $('detail-body').append(...detailSince(past, diff));
  } catch (err) {
    if (state.detailId !== id) return;
    box.replaceChildren(...problemNodes(err.problem || { title: t('error'), detail: String(err.message) }));
    box.hidden = false;
    if (!state.detail) $('detail-body').replaceChildren(h('h2', { id: 'detail-title' }, id));
  }
}

function openDetail(id, opener) {
  const dlg = $('detail');
  state.opener = opener || document.activeElement;
  if (state.detailId !== id) {
    state.detail = null;
    $('detail-alert').hidden = true;
    $('detail-body').replaceChildren(h('h2', { id: 'detail-title' }, t('loading')));
  }
  state.detailId = id;
  saveUrl();
  if (!dlg.open) dlg.showModal();
  $('detail-close').focus();
  loadDetail();
}

// The dialog closes on Esc (natively) and on Close; both end up here.
function onDetailClosed() {
  const id = state.detailId || '';
  state.detailId = null;
  state.detail = null;
  saveUrl();
  // A live refresh may have re-rendered the row: find its link again.
  const back = state.opener && state.opener.isConnected ? state.opener
    : document.querySelector(`#list-body tr[data-id="${CSS.escape(id)}"] a.open`);
  if (back) back.focus();
  state.opener = null;
}

// ---------- a past revision, and what changed since ----------

/** One change of an agreement's diff, as a line to read. */
function changeLine(c) {
  const brief = (v) => {
    const text = typeof v === 'string' ? v : JSON.stringify(v);
    return text && text.length > 120 ? `${text.slice(0, 119)}…` : text;
  };
  const op = h('span', { class: `op op-${c.op}` }, t(`op_${c.op}`));
  if (c.op === 'changed') return h('li', {}, h('code', {}, c.path), ' ', op, ': ', brief(c.from), ' → ', brief(c.to));
  return h('li', {}, h('code', {}, c.path), ' ', op, ': ', brief(c.value));
}

function detailSince(past, diff) {
  const changes = diff.changes || [];
  return [
    h('h3', { id: 'detail-since' }, t('detailSince', past)),
    changes.length ? h('ul', { class: 'changes' }, changes.map(changeLine)) : h('p', { class: 'muted' }, t('detailNoChange')),
  ];
}

/** The pledge totals that moved between the revision shown and now, under the same filters. */
async function loadSince() {
  const box = $('since');
  if (state.past === null) { box.hidden = true; return; }
  if (state.sinceAbort) state.sinceAbort.abort();
  const ctl = new AbortController();
  state.sinceAbort = ctl;
  $('since-h').textContent = t('sinceTitle', state.past);
  box.hidden = false;
  try {
    const diff = await api(`/v1/stats/pledges/diff?${query({ from: state.past, group_by: 'partner', ...filterValues() })}`, ctl.signal);
    const items = diff.items || [];
    $('since-body').replaceChildren(...items.map((it) => h('tr', {},
      h('td', {}, partnerLabel(it.partner)),
      h('td', {}, it.currency),
      h('td', { class: 'num' }, it.from),
      h('td', { class: 'num' }, it.to),
      h('td', { class: 'num' }, it.change.startsWith('-') ? it.change : `+${it.change}`))));
    $('since-table').hidden = items.length === 0;
    $('since-status').textContent = items.length ? '' : t('sinceNone');
    setError('since', null);
  } catch (err) {
    if (err.name === 'AbortError') return;
    $('since-body').replaceChildren();
    $('since-status').textContent = t('sinceFailed');
    setError('since', err);
  } finally {
    if (state.sinceAbort === ctl) state.sinceAbort = null;
  }
}

const sinceRefresh = debounce(loadSince, 500);

async function loadPastTime() {
  const past = state.past;
  state.pastAt = null;
  renderAsOf();
  if (past === null) return;
  try {
    const when = await changeAt(past);
    if (state.past === past) { state.pastAt = when; renderAsOf(); }
  } catch (err) {
    setError('changes', err);
  }
}

/** Shows the revision `past` (a number), or now (null), everywhere on the page. */
function showPast(past) {
  state.past = past;
  $('past-revision').value = past === null ? '' : String(past);
  $('past-leave').hidden = past === null;
  document.body.classList.toggle('in-past', past !== null);
  loadPastTime();
  loadAreas();
  loadPartnerNames();
  refresh();
  if (state.detailId) loadDetail();
}

// ---------- live updates ----------

const liveRefresh = debounce(() => { loadList(); loadCharts(); }, 500);
let events = null;
let retry = 0;
let liveState = ['connecting'];

function setLive(ok, ...words) {
  liveState = words;
  $('live-text').textContent = t(...words);
  $('live').classList.toggle('is-live', !!ok);
}

/** Does a change event concern the open agreement (or one of its pledges/sources)? */
function touchesDetail(ev) {
  const id = state.detailId;
  if (!id || !ev) return false;
  if (ev.agreement_id === id) return true;
  if (ev.entity === 'agreement') return ev.id === id;
  if (ev.entity !== 'pledge' && ev.entity !== 'source') return false;
  const a = state.detail;
  const known = a && [...(a.pledges || []), ...(a.sources || [])].some((x) => x.id === ev.id);
  return known || String(ev.id || '').startsWith(`${id}-`);
}

function onEvent(msg) {
  let ev = null;
  try { ev = JSON.parse(msg.data); } catch (_) { /* not JSON: still a change */ }
  // The change itself says when the data moved on.
  if (ev && Number.isInteger(ev.seq) && ev.seq > (state.revision || 0)) {
    state.revision = ev.seq;
    state.revisionAt = ev.at;
    renderAsOf();
  }
  // A past revision never changes; only what changed since it does.
  if (state.past !== null) {
    sinceRefresh();
    if (touchesDetail(ev)) loadDetail();
    return;
  }
  liveRefresh();
  if (touchesDetail(ev)) loadDetail();
}

function connect() {
  if (!('EventSource' in window)) { setLive(false, 'liveUnavailable'); return; }
  events = new EventSource('/v1/events');
  events.onopen = () => { retry = 0; setLive(true, 'live'); };
  events.onmessage = onEvent;
  // In case the server names its events rather than using the default type.
  for (const name of ['change', 'agreement', 'pledge', 'source', 'partner', 'area']) events.addEventListener(name, onEvent);
  events.onerror = () => {
    if (events.readyState === EventSource.CONNECTING) { setLive(false, 'reconnecting'); return; }
    // CLOSED: the browser gave up (e.g. a 404 or wrong type); try again later ourselves.
    events.close();
    const wait = Math.min(60, 5 * 2 ** retry++);
    setLive(false, 'offline', wait);
    setTimeout(connect, wait * 1000);
  };
}

// ---------- wiring ----------

async function loadAreas() {
  try {
    const page = await api(at('/v1/areas?limit=500'));
    const sel = $('f-area');
    const chosen = sel.value;
    const opts = page.items.map((a) => h('option', { value: a.code }, `${a.name}${a.agreement_count !== undefined ? ` (${a.agreement_count})` : ''}`));
    // A code from the URL that the API does not know stays, so its error shows.
    if (chosen && !page.items.some((a) => a.code === chosen)) opts.push(h('option', { value: chosen }, chosen));
    sel.replaceChildren(h('option', { value: '' }, t('any')), ...opts);
    sel.value = chosen;
    setError('areas', null);
  } catch (err) {
    setError('areas', err);
  }
}

/** Partner names label the chart; the list supplies them too, so failure is harmless. */
async function loadPartnerNames() {
  try {
    const page = await api(at('/v1/partners?limit=500'));
    for (const p of page.items || []) if (p.code) state.names.set(p.code, p);
    drawCharts();
  } catch (_) { /* codes remain as labels */ }
}

/** Everything in the other language: the page's words, and the data asked for again. */
function switchLanguage(lang) {
  if (lang === state.lang) return;
  state.lang = lang;
  saveLang();
  translatePage();
  setLive($('live').classList.contains('is-live'), ...liveState);
  renderAsOf();
  loadAreas();
  loadPartnerNames();
  refresh();
  if (state.detailId) loadDetail();
}

function init() {
  state.lang = readLang();
  translatePage();
  setLive(false, 'connecting');
  const form = $('filters');
  const openId = readUrl();
  const typed = debounce(refresh, 300);
  form.addEventListener('input', (e) => { if (e.target.tagName === 'INPUT') typed(); });
  form.addEventListener('change', (e) => { if (e.target.tagName === 'SELECT') typed.now(); });
  form.addEventListener('submit', (e) => { e.preventDefault(); typed.now(); });
  // After a reset the fields are cleared only once the event has run.
  form.addEventListener('reset', () => setTimeout(() => { hideSuggestions(); typed.now(); }, 0));

  for (const b of document.querySelectorAll('[data-lang]')) b.addEventListener('click', () => switchLanguage(b.dataset.lang));
  $('sort').addEventListener('change', (e) => setSort(e.target.value.replace(/^-/, ''), e.target.value.startsWith('-')));
  for (const b of document.querySelectorAll('#list thead button.sort')) {
    b.addEventListener('click', () => {
      const key = b.dataset.sort;
      // A new column starts in its natural order: amounts and dates largest/newest first.
      setSort(key, state.sort.key === key ? !state.sort.desc : key === 'amount' || key === 'date');
    });
  }
  $('chart-currency').addEventListener('change', (e) => {
    state.view = e.target.value;
    saveUrl();
    updateDownloads();
    drawCharts();
    renderFigures();
    renderTable();
  });
  $('past-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const v = $('past-revision').value.trim();
    showPast(/^\d+$/.test(v) ? Number(v) : null);
  });
  $('past-leave').addEventListener('click', () => showPast(null));
  $('detail-close').addEventListener('click', () => $('detail').close());
  $('detail').addEventListener('close', onDetailClosed);
  // A click on the backdrop (outside the dialog box) closes it as well.
  $('detail').addEventListener('click', (e) => { if (e.target === e.currentTarget) e.currentTarget.close(); });

  renderSortControls();
  if (state.past !== null) {
    $('past-revision').value = String(state.past);
    $('past-leave').hidden = false;
    document.body.classList.add('in-past');
    loadPastTime();
    loadSince();
  }
  updateDownloads();
  loadAreas();
  loadPartnerNames();
  loadList();
  loadCharts();
  if (openId) openDetail(openId, null);
  connect();
}

init();
