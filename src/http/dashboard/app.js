// The accords dashboard: plain ES2020, no dependencies. Every piece of data
// is inserted as text (textContent / createElement), never as markup, and no
// inline styles are used, so the page works under a strict CSP.
'use strict';

const $ = (id) => document.getElementById(id);
const FILTERS = ['partner', 'area', 'year', 'status', 'q'];
const SVG = 'http://www.w3.org/2000/svg';

const state = {
  cursor: null,        // next_cursor of the last page loaded
  rows: 0,             // agreements shown, so a live refresh keeps as many
  listAbort: null,     // aborts a list load overtaken by a newer one
  chartAbort: null,
  detailId: null,      // the agreement open in the dialog
  detail: null,
  stats: { partner: [], year: [] },
  chartCurrency: '',   // chosen by the user (kept in the URL), else automatic
  names: new Map(),    // partner code -> name, for chart labels
  errors: new Map(),   // alert messages by origin, so one success clears only its own
  opener: null,        // element to refocus when the dialog closes
  focusPledge: null,   // pledge to move to once the agreement opening is shown
};

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
  let t = 0;
  const run = (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
  run.now = (...args) => { clearTimeout(t); fn(...args); };
  return run;
}

const words = (v) => (v === null || v === undefined || v === '' ? '—' : String(v).replace(/_/g, ' '));

/** Only http(s) links are made clickable: a stored javascript: URL must not run. */
function link(url, text) {
  let ok = false;
  try { ok = ['http:', 'https:'].includes(new URL(url, location.href).protocol); } catch (_) { /* not a URL */ }
  return ok ? h('a', { href: url, rel: 'noopener noreferrer' }, text || url) : h('span', {}, text || url || '');
}

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
  const whole = (abs / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const cents = abs % 100n;
  return (neg ? '-' : '') + whole + (cents ? '.' + cents.toString().padStart(2, '0') : '');
}

const money = (currency, minor) => `${currency} ${formatMinor(minor)}`;

/** The years a per-year pledge is promised for (0 if its range is not known). */
function perYearCount(p) {
  if (!Number.isInteger(p.year_from) || !Number.isInteger(p.year_to) || p.year_to < p.year_from) return 0;
  return p.year_to - p.year_from + 1;
}

/**
 * What a pledge adds to a total, as the service counts it: nothing for a
 * part of another pledge (its whole is counted), the amount for each year of
 * the range for a per-year pledge, else the amount once.
 */
function countedMinor(p) {
  if (p.part_of) return 0n;
  const n = p.basis === 'per_year' ? perYearCount(p) : 1;
  return toMinor(p.amount) * BigInt(n || 1);
}

/** Sums pledges per currency by the rules above; returns [[currency, minor], ...] sorted. */
function sumPledges(pledges) {
  const sums = new Map();
  for (const p of pledges || []) {
    if (p.part_of) continue; // counted through its whole, perhaps in another agreement
    sums.set(p.currency, (sums.get(p.currency) || 0n) + countedMinor(p));
  }
  return [...sums].sort((a, b) => a[0].localeCompare(b[0]));
}

// ---------- API and errors ----------

class ApiError extends Error {
  constructor(problem) {
    super(problem.detail || problem.title || 'request failed');
    this.problem = problem;
  }
}

async function api(path, signal) {
  let res;
  try {
    res = await fetch(path, { headers: { Accept: 'application/json' }, signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError({ title: 'Network error', detail: 'The service could not be reached; check the connection and try again.' });
  }
  const type = res.headers.get('content-type') || '';
  const body = type.includes('json') ? await res.json().catch(() => null) : null;
  if (!res.ok) {
    throw new ApiError(body && typeof body === 'object'
      ? body
      : { title: res.statusText, status: res.status, detail: `The service answered ${res.status} ${res.statusText}.` });
  }
  return body;
}

/** Renders a problem+json document: its detail, then each field error. */
function problemNodes(problem) {
  const nodes = [h('p', {}, h('strong', {}, problem.title || 'Error'), problem.status ? ` (${problem.status})` : '', ': ', problem.detail || '')];
  if (Array.isArray(problem.errors) && problem.errors.length) {
    nodes.push(h('ul', {}, problem.errors.map((e) => h('li', {}, h('code', {}, e.field || '?'), ': ', e.message || ''))));
  }
  return nodes;
}

function setError(origin, err) {
  if (err && err.name === 'AbortError') return;
  if (err) state.errors.set(origin, err.problem || { title: 'Error', detail: String(err.message || err) });
  else state.errors.delete(origin);
  const box = $('alert');
  box.replaceChildren();
  // The list and the charts fail together on a bad filter: show it once.
  const seen = new Set();
  for (const p of state.errors.values()) {
    const key = `${p.status}|${p.detail}`;
    if (seen.has(key)) continue;
    seen.add(key);
    append(box, problemNodes(p));
  }
  box.hidden = seen.size === 0;
}

// ---------- filters and the URL ----------

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

/** Mirrors the view into the address bar so it can be shared. */
function saveUrl() {
  const p = new URLSearchParams(filterValues());
  if (state.chartCurrency) p.set('chart_currency', state.chartCurrency);
  if (state.detailId) p.set('open', state.detailId);
  const qs = p.toString();
  history.replaceState(null, '', location.pathname + (qs ? '?' + qs : '') + location.hash);
}

function readUrl() {
  const p = new URLSearchParams(location.search);
  const form = $('filters');
  for (const name of FILTERS) {
    const v = p.get(name);
    if (v === null) continue;
    const el = form.elements[name];
    // The area list may not be loaded yet: keep the value selectable.
    if (el.tagName === 'SELECT' && ![...el.options].some((o) => o.value === v)) el.append(h('option', { value: v }, v));
    el.value = v;
  }
  state.chartCurrency = p.get('chart_currency') || '';
  return p.get('open');
}

function refresh() {
  state.rows = 0; // new filters start again from one page
  saveUrl();
  loadList();
  loadCharts();
}

// ---------- the table ----------

function row(a) {
  const sums = sumPledges(a.pledges);
  const partner = a.partner || {};
  if (partner.code && partner.name) state.names.set(partner.code, partner.name);
  const open = h('a', { href: `?open=${encodeURIComponent(a.id)}`, class: 'open' }, a.title || a.id);
  open.addEventListener('click', (e) => { e.preventDefault(); openDetail(a.id, open); });
  const tr = h('tr', { 'data-id': a.id },
    h('td', {}, partner.name || partner.code || '—'),
    h('td', { class: 'nowrap' }, a.signed_on ? h('time', { datetime: a.signed_on }, a.signed_on) : 'not signed'),
    h('td', {}, open),
    h('td', {}, h('span', { class: `status status-${a.status}` }, words(a.status))),
    h('td', { class: 'num' }, sums.length
      ? h('ul', { class: 'plain' }, sums.map(([c, m]) => h('li', {}, money(c, m))))
      : h('span', { class: 'muted' }, a.pledges && a.pledges.length ? 'counted in another agreement' : 'none')));
  // A click anywhere on the row opens it too (the title link is the keyboard target).
  tr.addEventListener('click', (e) => {
    if (!e.target.closest('a, button') && !getSelection().toString()) openDetail(a.id, open);
  });
  return tr;
}

async function loadList(append = false) {
  if (state.listAbort) state.listAbort.abort();
  const ctl = new AbortController();
  state.listAbort = ctl;
  // A refresh reloads as many rows as are shown, up to the API's page limit.
  const limit = append ? 100 : Math.min(500, Math.max(100, state.rows));
  const params = { ...filterValues(), limit, fields: 'id,partner,title,status,signed_on,pledges' };
  if (append && state.cursor) params.cursor = state.cursor;
  $('list').setAttribute('aria-busy', 'true');
  if (!append) {
    $('list-status').textContent = 'Loading…';
    $('more').hidden = true; // the old cursor belongs to the old result
  }
  try {
    const page = await api(`/v1/agreements?${query(params)}`, ctl.signal);
    const body = $('list-body');
    const rows = page.items.map(row);
    if (append) body.append(...rows);
    else body.replaceChildren(...rows);
    state.rows = body.rows.length;
    state.cursor = page.next_cursor || null;
    $('more').hidden = !state.cursor;
    if (!state.rows) body.append(h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'No agreement matches these filters.')));
    $('list-status').textContent = `${state.rows} agreement${state.rows === 1 ? '' : 's'} shown${state.cursor ? '; more available' : ''}.`;
    setError('list', null);
  } catch (err) {
    if (err.name === 'AbortError') return;
    if (!append) { $('list-body').replaceChildren(); state.rows = 0; state.cursor = null; $('more').hidden = true; }
    $('list-status').textContent = 'The agreements could not be loaded.';
    setError('list', err);
  } finally {
    if (state.listAbort === ctl) { state.listAbort = null; $('list').removeAttribute('aria-busy'); }
  }
}

// ---------- charts ----------

async function loadCharts() {
  if (state.chartAbort) state.chartAbort.abort();
  const ctl = new AbortController();
  state.chartAbort = ctl;
  const f = filterValues();
  try {
    const [byPartner, byYear] = await Promise.all([
      api(`/v1/stats/pledges?${query({ group_by: 'partner', ...f })}`, ctl.signal),
      api(`/v1/stats/pledges?${query({ group_by: 'year', ...f })}`, ctl.signal),
    ]);
    state.stats = { partner: byPartner.items || [], year: byYear.items || [] };
    setError('charts', null);
  } catch (err) {
    if (err.name === 'AbortError') return;
    state.stats = { partner: [], year: [] };
    setError('charts', err);
  } finally {
    if (state.chartAbort === ctl) state.chartAbort = null;
  }
  fillCurrencies();
  drawCharts();
}

/** Offers every currency present; defaults to the one with the most items. */
function fillCurrencies() {
  const counts = new Map();
  for (const it of [...state.stats.partner, ...state.stats.year]) counts.set(it.currency, (counts.get(it.currency) || 0) + 1);
  const list = [...counts.keys()].sort();
  const best = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0];
  const sel = $('chart-currency');
  const current = state.chartCurrency && counts.has(state.chartCurrency) ? state.chartCurrency : (best ? best[0] : '');
  sel.replaceChildren(...list.map((c) => h('option', { value: c }, c)));
  sel.disabled = list.length === 0;
  if (!list.length) sel.append(h('option', { value: '' }, 'no pledges'));
  sel.value = current;
}

function drawCharts() {
  const cur = $('chart-currency').value;
  const pick = (items) => items.filter((it) => it.currency === cur);
  const partners = pick(state.stats.partner)
    .map((it) => ({ label: state.names.get(it.partner) || it.partner || 'unknown', minor: toMinor(it.total), count: it.count, years: it.years }))
    .sort((a, b) => (b.minor > a.minor ? 1 : b.minor < a.minor ? -1 : a.label.localeCompare(b.label)));
  const years = pick(state.stats.year)
    .map((it) => ({ label: it.year === null || it.year === undefined ? 'year not stated' : String(it.year), minor: toMinor(it.total), count: it.count, years: it.years, y: it.year ?? Infinity }))
    .sort((a, b) => a.y - b.y);
  barChart($('by-partner'), 'Pledges by partner', 'Partner', cur, partners);
  barChart($('by-year'), 'Pledges by year', 'Year', cur, years);
}

/** "3 pledges", and how many years per-year pledges were counted for (the API's optional `years`). */
function countText(d) {
  const n = `${d.count} pledge${d.count === 1 ? '' : 's'}`;
  return d.years > 0 ? `${n}; per-year amounts counted for ${d.years} year${d.years === 1 ? '' : 's'}` : n;
}

/**
 * Horizontal bars: a label line, then a bar whose width is the share of the
 * largest total. The ratio is taken in BigInt (in thousandths) and only then
 * turned into a Number for the pixel width. Widths are percentages so the
 * chart fits any screen without scaling its text.
 */
function barChart(box, title, keyName, cur, data) {
  box.replaceChildren();
  if (!data.length) {
    box.append(h('p', { class: 'muted' }, cur ? `No ${cur} pledges for these filters.` : 'No pledges for these filters.'));
    return;
  }
  const max = data.reduce((m, d) => (d.minor > m ? d.minor : m), 1n);
  const rowH = 38;
  const svg = s('svg', { class: 'bars', width: '100%', height: data.length * rowH + 4, role: 'img' });
  const summary = data.map((d) => `${d.label}: ${money(cur, d.minor)}`).join('; ');
  svg.setAttribute('aria-label', `${title} in ${cur}. ${summary}`);
  data.forEach((d, i) => {
    const y = i * rowH;
    const pct = Number((d.minor * 100000n) / max) / 1000; // 0..100, to 3 decimals
    const g = s('g', {});
    const t = s('title', {});
    t.textContent = `${d.label}: ${money(cur, d.minor)} (${countText(d)})`;
    const label = s('text', { x: 0, y: y + 14, class: 'bar-label' });
    label.textContent = d.label;
    const value = s('tspan', { class: 'bar-value', dx: 8 });
    value.textContent = money(cur, d.minor);
    label.append(value);
    g.append(t, s('rect', { x: 0, y: y + 20, width: '100%', height: 12, rx: 2, class: 'bar-track' }),
      s('rect', { x: 0, y: y + 20, width: `${Math.max(pct, 0.4)}%`, height: 12, rx: 2, class: 'bar' }), label);
    svg.append(g);
  });
  box.append(svg);
  // The exact figures, as a table for anyone who prefers or needs one.
  const table = h('table', { class: 'figures' },
    h('caption', {}, `${title}, ${cur}`),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, keyName), h('th', { scope: 'col', class: 'num' }, 'Total'), h('th', { scope: 'col', class: 'num' }, 'Pledges'))),
    h('tbody', {}, data.map((d) => h('tr', {},
      h('th', { scope: 'row' }, d.label), h('td', { class: 'num' }, money(cur, d.minor)), h('td', { class: 'num' }, countText(d))))));
  box.append(h('details', {}, h('summary', {}, 'Show as a table'), h('div', { class: 'table-wrap' }, table)));
}

// ---------- detail dialog ----------

/** How the dialog names the fields of an agreement and of a pledge. */
const FIELD_LABELS = {
  title: 'title', kind: 'kind', status: 'status', signed_on: 'date of signing', signed_at: 'place of signing',
  signed_place: 'place details (city, country, venue, event)', signatories: 'signatories', term_years: 'term',
  expires_on: 'expiry date', legally_binding: 'legal status', summary: 'summary', text_url: 'text', areas: 'areas',
};
const PLEDGE_LABELS = {
  amount: 'amount', currency: 'currency', year_from: 'first year', year_to: 'last year', kind: 'kind',
  measure: 'measure', basis: 'basis', part_of: 'part of', in_agreement_text: 'in the agreement text', description: 'description',
};
const fieldLabel = (f, labels) => (labels || FIELD_LABELS)[f] || words(f);

function years(p) {
  if (p.year_from && p.year_to) return p.year_from === p.year_to ? String(p.year_from) : `${p.year_from}–${p.year_to}`;
  if (p.year_from) return `from ${p.year_from}`;
  if (p.year_to) return `until ${p.year_to}`;
  return 'years not stated';
}

/** "ISK 4,000,000,000 a year, 2024–2028 (5 years)" or "EUR 977,000,000 · 2024". */
function pledgeAmount(p) {
  const amount = money(p.currency, toMinor(p.amount));
  if (p.basis !== 'per_year') return [h('strong', {}, amount), ` · ${years(p)}`];
  const n = perYearCount(p);
  return [h('strong', {}, `${amount} a year`), n ? `, ${years(p)} (${n} year${n === 1 ? '' : 's'})` : ', years not stated'];
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
      box.replaceChildren(...problemNodes(err.problem || { title: 'Error', detail: String(err.message) }));
      box.hidden = false;
    }
  });
  return own ? [el, h('span', { class: 'muted' }, ` (${money(own.currency, toMinor(own.amount))}${own.basis === 'per_year' ? ' a year' : ''})`)] : el;
}

/** "a, b and c" with nodes. */
function joined(items) {
  const out = [];
  items.forEach((x, i) => out.push(i === 0 ? '' : i === items.length - 1 ? ' and ' : ', ', x));
  return out;
}

/**
 * The visible mark of a contested or unverified value: a text badge (not
 * colour alone), the note, and the sources on each side as links.
 */
function markerNode(a, field, m, labels) {
  const status = m.status === 'contested' ? 'contested' : 'unverified';
  const sides = [];
  if (m.sources_for && m.sources_for.length) sides.push(h('span', {}, 'Sources for: ', joined(m.sources_for.map((id) => sourceRef(a, id))), '.'));
  if (m.sources_against && m.sources_against.length) sides.push(h('span', {}, 'Against: ', joined(m.sources_against.map((id) => sourceRef(a, id))), '.'));
  return h('div', { class: `marker marker-${status}`, role: 'note' },
    h('span', { class: 'badge' }, status),
    labels ? h('strong', {}, ` ${fieldLabel(field, labels)}:`) : null,
    ' ', m.note || '',
    sides.length ? h('span', { class: 'marker-sources' }, sides.map((x) => [' ', x])) : null);
}

/**
 * Markers of one record, each given out once, next to its value; `rest`
 * gives out what is left (a field shown nowhere else), always named.
 */
function markerSet(a, markers, labels) {
  const left = new Map(Object.entries(markers || {}));
  const give = (fields, named) => fields.filter((f) => left.has(f)).map((f) => {
    const m = left.get(f);
    left.delete(f);
    return markerNode(a, f, m, named);
  });
  return {
    take: (...fields) => give(fields, labels),
    rest: () => give([...left.keys()], labels || FIELD_LABELS),
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
      ? h('p', { class: 'supports' }, 'Supports: ',
        pledges.length ? ['pledge', pledges.length === 1 ? ' ' : 's ', joined(pledges.map((id) => pledgeRef(a, id)))] : null,
        pledges.length && fields.length ? '; ' : null,
        fields.length ? fields.map((f) => fieldLabel(f)).join(', ') : null, '.')
      : h('p', { class: 'supports muted' }, 'Not linked to a particular fact.'));
}

/** A pledge's own sources: those the API nests in it, else those of the agreement naming it. */
const pledgeSources = (a, pl) => (Array.isArray(pl.sources) ? pl.sources : (a.sources || []).filter((x) => (x.pledges || []).includes(pl.id)));

function pledgeItem(a, pl) {
  const marks = markerSet(a, pl.markers, PLEDGE_LABELS);
  const sources = pledgeSources(a, pl);
  const parts = pl.parts || [];
  return h('li', { id: pledgeAnchor(pl.id), tabindex: '-1' },
    h('p', {}, pledgeAmount(pl), ` · ${words(pl.kind)}`,
      pl.measure ? ` · ${words(pl.measure)}` : '',
      pl.in_agreement_text === true ? ' · in the agreement text' : pl.in_agreement_text === false ? ' · not in the agreement text' : '',
      h('span', { class: 'muted small' }, ` [${pl.id}]`)),
    marks.take('amount', 'currency', 'basis', 'year_from', 'year_to', 'kind', 'measure', 'in_agreement_text'),
    pl.part_of ? h('p', { class: 'relation' }, 'Part of ', pledgeRef(a, pl.part_of), ': totals count it within that pledge, not on its own.') : null,
    marks.take('part_of'),
    parts.length ? h('p', { class: 'relation' }, 'Includes ', joined(parts.map((id) => pledgeRef(a, id))), ': totals count ', parts.length === 1 ? 'that part' : 'those parts', ' only through this pledge.') : null,
    pl.description ? h('p', {}, pl.description) : null,
    marks.take('description'),
    marks.rest(),
    pl.note ? h('p', { class: 'note' }, 'Note: ', pl.note) : null,
    // Named briefly here; each links to its full entry under Sources.
    sources.length ? h('p', { class: 'supports' }, 'Sources: ', joined(sources.map((x) => sourceRef(a, x.id))), '.') : null);
}

/** City, country, venue and event, as far as they are known. */
function placeNode(place) {
  if (!place) return null;
  const country = place.country ? [state.names.get(place.country) || place.country, state.names.has(place.country) ? ` (${place.country})` : ''].join('') : null;
  const items = [['City', place.city], ['Country', country], ['Venue', place.venue], ['Event', place.event]]
    .filter(([, v]) => v)
    .map(([k, v]) => h('li', {}, h('span', { class: 'muted' }, `${k}: `), v));
  return items.length ? h('ul', { class: 'inline' }, items) : null;
}

function pair(dl, term, value, marks) {
  const empty = value === null || value === undefined || value === '' || (Array.isArray(value) && !value.flat().some(Boolean));
  dl.append(h('dt', {}, term), h('dd', {}, empty ? h('span', { class: 'muted' }, 'not stated') : value, marks && marks.length ? marks : null));
}

function renderDetail(a) {
  const p = a.partner || {};
  const marks = markerSet(a, a.markers, null);
  const dl = h('dl', { class: 'facts' });
  pair(dl, 'Partner', [p.name || p.code, p.name_uk ? h('span', { lang: 'uk' }, ` (${p.name_uk})`) : null, p.code ? h('span', { class: 'muted' }, ` · ${p.code}`) : null]);
  pair(dl, 'Kind', a.kind && words(a.kind), marks.take('kind'));
  pair(dl, 'Status', a.status && h('span', { class: `status status-${a.status}` }, words(a.status)), marks.take('status'));
  pair(dl, 'Signed on', a.signed_on, marks.take('signed_on'));
  pair(dl, 'Signed at', a.signed_at, marks.take('signed_at'));
  const place = placeNode(a.signed_place);
  if (place || (a.markers && a.markers.signed_place)) pair(dl, 'Place', place, marks.take('signed_place'));
  pair(dl, 'Term', a.term_years ? `${a.term_years} year${a.term_years === 1 ? '' : 's'}` : null, marks.take('term_years'));
  pair(dl, 'Expires on', a.expires_on, marks.take('expires_on'));
  pair(dl, 'Legally binding', a.legally_binding === true ? 'yes' : a.legally_binding === false ? 'no' : 'unknown', marks.take('legally_binding'));
  if (a.text_url || (a.markers && a.markers.text_url)) pair(dl, 'Text', a.text_url ? link(a.text_url, 'the agreement text') : null, marks.take('text_url'));

  const sums = sumPledges(a.pledges);
  const body = [
    h('h2', { id: 'detail-title' }, a.title || a.id),
    marks.take('title'),
    dl,
    a.summary ? [h('h3', {}, 'Summary'), h('p', {}, a.summary)] : null,
    marks.take('summary'),
    h('h3', {}, 'Signatories'),
    a.signatories && a.signatories.length
      ? h('ul', {}, a.signatories.map((x) => h('li', {}, x.name, x.role ? `, ${x.role}` : '', x.side ? h('span', { class: 'muted' }, ` (${x.side})`) : null)))
      : h('p', { class: 'muted' }, 'None recorded.'),
    marks.take('signatories'),
    h('h3', {}, 'Areas of cooperation'),
    a.areas && a.areas.length
      ? h('ul', {}, a.areas.map((x) => h('li', {}, h('strong', {}, x.name || x.code), x.detail ? ` — ${x.detail}` : '')))
      : h('p', { class: 'muted' }, 'None recorded.'),
    marks.take('areas'),
    h('h3', {}, 'Pledges', sums.length ? h('span', { class: 'muted' }, ` — total ${sums.map(([c, m]) => money(c, m)).join(', ')}`) : null),
    sums.length ? h('p', { class: 'muted small' }, 'The total counts a per-year pledge once for every year of its range, and a pledge that is part of another only through that whole.') : null,
    a.pledges && a.pledges.length
      ? h('ul', { class: 'pledges' }, a.pledges.map((pl) => pledgeItem(a, pl)))
      : h('p', { class: 'muted' }, 'None recorded.'),
    h('h3', {}, 'Sources'),
    a.sources && a.sources.length
      ? h('ul', { class: 'sources' }, a.sources.map((x) => sourceItem(a, x)))
      : h('p', { class: 'muted' }, 'None recorded.'),
    // A marker on a field the dialog does not show still shows.
    marks.rest(),
    h('p', { class: 'muted small' }, `Version ${a.version ?? '?'}`, a.updated_at ? `, updated ${a.updated_at}` : '', ' · ', link(`/v1/agreements/${encodeURIComponent(a.id)}`, 'as JSON')),
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
    const a = await api(`/v1/agreements/${encodeURIComponent(id)}`);
    if (state.detailId !== id) return; // closed or replaced meanwhile
    state.detail = a;
    box.hidden = true;
    renderDetail(a);
  } catch (err) {
    if (state.detailId !== id) return;
    box.replaceChildren(...problemNodes(err.problem || { title: 'Error', detail: String(err.message) }));
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
    $('detail-body').replaceChildren(h('h2', { id: 'detail-title' }, 'Loading…'));
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

// ---------- live updates ----------

const liveRefresh = debounce(() => { loadList(); loadCharts(); }, 500);
let events = null;
let retry = 0;

function setLive(text, ok) {
  $('live-text').textContent = text;
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
  liveRefresh();
  if (touchesDetail(ev)) loadDetail();
}

function connect() {
  if (!('EventSource' in window)) { setLive('live updates unavailable', false); return; }
  events = new EventSource('/v1/events');
  events.onopen = () => { retry = 0; setLive('live', true); };
  events.onmessage = onEvent;
  // In case the server names its events rather than using the default type.
  for (const name of ['change', 'agreement', 'pledge', 'source', 'partner', 'area']) events.addEventListener(name, onEvent);
  events.onerror = () => {
    if (events.readyState === EventSource.CONNECTING) { setLive('reconnecting…', false); return; }
    // CLOSED: the browser gave up (e.g. a 404 or wrong type); try again later ourselves.
    events.close();
    const wait = Math.min(60, 5 * 2 ** retry++);
    setLive(`offline; retrying in ${wait} s`, false);
    setTimeout(connect, wait * 1000);
  };
}

// ---------- wiring ----------

async function loadAreas() {
  try {
    const page = await api('/v1/areas?limit=500');
    const sel = $('f-area');
    const chosen = sel.value;
    const opts = page.items.map((a) => h('option', { value: a.code }, `${a.name}${a.agreement_count !== undefined ? ` (${a.agreement_count})` : ''}`));
    // A code from the URL that the API does not know stays, so its error shows.
    if (chosen && !page.items.some((a) => a.code === chosen)) opts.push(h('option', { value: chosen }, chosen));
    sel.replaceChildren(h('option', { value: '' }, 'any'), ...opts);
    sel.value = chosen;
    setError('areas', null);
  } catch (err) {
    setError('areas', err);
  }
}

/** Partner names label the chart; the list supplies them too, so failure is harmless. */
async function loadPartnerNames() {
  try {
    const page = await api('/v1/partners?limit=500');
    for (const p of page.items || []) if (p.code && p.name) state.names.set(p.code, p.name);
    drawCharts();
  } catch (_) { /* codes remain as labels */ }
}

function init() {
  const form = $('filters');
  const openId = readUrl();
  const typed = debounce(refresh, 300);
  form.addEventListener('input', (e) => { if (e.target.tagName === 'INPUT') typed(); });
  form.addEventListener('change', (e) => { if (e.target.tagName === 'SELECT') typed.now(); });
  form.addEventListener('submit', (e) => { e.preventDefault(); typed.now(); });
  // After a reset the fields are cleared only once the event has run.
  form.addEventListener('reset', () => setTimeout(() => typed.now(), 0));

  $('more').addEventListener('click', () => loadList(true));
  $('chart-currency').addEventListener('change', (e) => { state.chartCurrency = e.target.value; saveUrl(); drawCharts(); });
  $('detail-close').addEventListener('click', () => $('detail').close());
  $('detail').addEventListener('close', onDetailClosed);
  // A click on the backdrop (outside the dialog box) closes it as well.
  $('detail').addEventListener('click', (e) => { if (e.target === e.currentTarget) e.currentTarget.close(); });

  loadAreas();
  loadPartnerNames();
  loadList();
  loadCharts();
  if (openId) openDetail(openId, null);
  connect();
}

init();
