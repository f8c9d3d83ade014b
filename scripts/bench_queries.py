#!/usr/bin/env python3
"""Every read query a dashboard can send, enumerated from the service's own
OpenAPI document, timed against a running accords; and the report comparing
two store sizes.

  bench_queries.py list BASE_URL                 # the enumeration, one per line
  bench_queries.py measure BASE_URL LABEL OUT    # time each, append JSON lines to OUT
  bench_queries.py report OUT...                 # Markdown: ratios and misses

The enumeration reads GET /openapi.json, so a new endpoint, parameter, sort,
group or format is measured without anyone adding it here:
- every GET operation under /v1 answering JSON, CSV or text (the event
  stream is a long poll, not a query);
- each enum value of each parameter alone (every sort in both directions,
  every format, status, kind, field, ...);
- every `group_by` value alone and every pair;
- each free-form parameter alone, with the sample value below: a parameter
  without one stops the run, naming it (add its sample here);
- a few combinations of filters;
- the first page, and a deep page reached by following `next_cursor`, for
  the base query and every sort.
Operations whose parameters are those of one already enumerated (the
partner's and the area's agreements) get the base query, every sort and a
deep page.

Standard library only; one keep-alive connection, sequential requests, like
a polling dashboard. Each query runs a few times to warm, then until
MAX_SAMPLES answers or MAX_SECONDS have passed (at least MIN_SAMPLES).
"""
import http.client
import itertools
import json
import os
import statistics
import sys
import time
import urllib.parse

MIN_SAMPLES = int(os.environ.get("MIN_SAMPLES", 5))
MAX_SAMPLES = int(os.environ.get("MAX_SAMPLES", 31))
MAX_SECONDS = float(os.environ.get("MAX_SECONDS", 1.5))
WARM = 2
# A first answer slower than this is timed once.
SLOW_MS = 2000
# Seconds one answer may take.
TIMEOUT = 60
# How many pages a deep page lies behind the first.
DEEP_HOPS = 4
# The target: within 3x of the small store, or under 5 ms.
RATIO = 3.0
FLOOR_MS = 5.0
# Writes: within 2x of the small store.
WRITE_RATIO = 2.0

# Values for parameters that have no enum in the spec, by name. A value names
# something the seeded store holds, and selects a realistic part of it.
SAMPLES = {
    "partner": "US",
    "area": "demining",
    "signed_from": "2023-01-01",
    "signed_to": "2023-12-31",
    "year": "2024",
    "currency": "EUR",
    "min_amount": "1000000",
    "max_amount": "500000000",
    "q": "cyber",
    "convert": "EUR",
    "since": "2024-01-01",
    "until": "2099-01-01",
    "key": "seed",
    "limit": "20",
    "entity": "agreement",
    "format": "text",
    "has_agreements": "true",
    "revision": "(revision)",
    "from": "(revision)",
    "to": "(revision)",
    "as_of": "(load time)",
}
# Values read from the store being measured, by their placeholder above.
DYNAMIC = {}
# Parameters that only make sense with another, and what they need.
NEEDS = {
    ("sort", "relevance"): {"q": "cyber"},
    ("sort", "-relevance"): {"q": "cyber"},
    ("rows", "pledges"): {"format": "csv"},
    ("bom", "true"): {"format": "csv"},
    ("min_amount", None): {"currency": "EUR"},
    ("max_amount", None): {"currency": "EUR"},
}
# Exports stream every match unless a limit is given: a page of one is what
# a dashboard asks for (a full export is the store's size by definition).
PAGED_FORMATS = {"csv", "ndjson", "text"}
# A few combinations a dashboard sends, by parameter name.
COMBINATIONS = [
    ("partner", "status"),
    ("area", "status"),
    ("year", "pledge_kind"),
    ("partner", "year", "kind"),
    ("currency", "min_amount", "max_amount"),
    ("q", "partner"),
    ("area", "legally_binding"),
]
# Operations whose work is the whole dataset by definition, not a query a
# dashboard polls: GET /v1/checks validates every record (over a minute at
# 100,000 agreements). Listed in the report as misses, not timed.
WHOLE_DATASET = {"/v1/checks"}
# Reads behind an administrator's key, not a dashboard's queries.
ADMIN_ONLY = ("/v1/webhooks",)
# Parameters that are not queries of their own.
SKIP = {"cursor", "limit", "pretty"}


def connect(base):
    url = urllib.parse.urlparse(base)
    return http.client.HTTPConnection(url.hostname, url.port, timeout=TIMEOUT)


def get(connection, path):
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    return response.status, body


def get_json(connection, path):
    status, body = get(connection, path)
    if status != 200:
        sys.exit(f"{path} answered {status}: {body[:300]!r}")
    return json.loads(body)


def enum_of(parameter):
    schema = parameter.get("schema", {})
    values = schema.get("enum") or schema.get("items", {}).get("enum")
    return [v for v in values or [] if v != ""]


def path_samples(connection):
    """Values for path parameters, read from the store itself."""
    page = get_json(connection, "/v1/agreements?limit=50&include=pledges,sources&partner=US")
    agreement = next((a for a in page["items"] if a.get("pledges") and a.get("sources")), page["items"][0])
    samples = {
        "/v1/agreements/{id}": {"id": agreement["id"]},
        "/v1/pledges/{id}": {"id": (agreement.get("pledges") or [{}])[0].get("id")},
        "/v1/sources/{id}": {"id": (agreement.get("sources") or [{}])[0].get("id")},
        "reference": "US",
        "code": "demining",
    }
    # Generated agreements are loaded in bulk, with one history entry for
    # the load: an agreement with a history of its own is a bundled one.
    changed = get_json(connection, "/v1/history?entity=agreement&limit=1")["items"]
    if changed:
        samples["/v1/agreements/{id}/history"] = {"id": changed[0]["id"]}
    # A past read: the revision and the time the generated store was loaded
    # at, as a published chart pins them (every later write leaves them be).
    # A diff between two revisions: the loaded one on both sides, so the
    # answer exists for any agreement and measures reading at a revision.
    # Labels keep the placeholder, so runs at two sizes line up.
    connection.request("GET", "/v1/agreements?limit=1")
    response = connection.getresponse()
    response.read()
    DYNAMIC["(revision)"] = response.getheader("Accords-Revision")
    DYNAMIC["(load time)"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    rates = get_json(connection, "/v1/rates?limit=1")["items"]
    if rates:
        samples["currency"] = rates[0]["currency"]
        samples["date"] = rates[0]["date"]
    return samples, agreement["id"]


def fill_path(template, samples, agreement_id):
    if template in samples:
        values = samples[template]
    else:
        values = {"id": agreement_id, **{k: v for k, v in samples.items() if isinstance(v, str)}}
    out = template
    for name in [p[1:-1] for p in template.split("/") if p.startswith("{")]:
        value = values.get(name)
        if value is None:
            return None
        out = out.replace("{" + name + "}", urllib.parse.quote(str(value), safe=""))
    return out


def sample_of(name, path):
    if name == "id" and "/history" in path:
        return None  # filled with the sample agreement by the caller
    if name == "since" and path in ("/v1/changes",):
        return "0"
    if name == "partner" and path in ("/v1/changes",):
        return "US"
    if name in ("currency",) and path.startswith("/v1/rates"):
        return "USD"
    if name == "year" and path.startswith("/v1/rates"):
        return "2024"
    if name in SAMPLES:
        return SAMPLES[name]
    sys.exit(f"GET {path}: the parameter {name!r} has no enum and no sample value; add one to SAMPLES in {__file__}")


def with_needs(params, names):
    out = dict(params)
    for name, value in params.items():
        for key in ((name, value), (name, None)):
            for need, need_value in NEEDS.get(key, {}).items():
                out.setdefault(need, need_value)
    if out.get("format") in PAGED_FORMATS and "limit" in names:
        out.setdefault("limit", "20")
    return out


def enumerate_queries(base):
    """(label, path, deep) for every query; deep ones are completed later."""
    connection = connect(base)
    spec = get_json(connection, "/openapi.json")
    samples, agreement_id = path_samples(connection)
    queries = []
    seen_parameter_sets = set()
    seen_labels = set()
    for template, operations in spec["paths"].items():
        operation = operations.get("get")
        if not operation or not template.startswith("/v1/"):
            continue
        produces = set()
        for code, response in operation.get("responses", {}).items():
            if code == "200":
                produces |= set(response.get("content", {}))
        if produces <= {"text/event-stream"}:
            continue
        if template.startswith(ADMIN_ONLY):
            print(f"not timed {template}: an administrator's key only", file=sys.stderr)
            continue
        if template in WHOLE_DATASET:
            print(f"not timed {template}: its work is the whole dataset", file=sys.stderr)
            continue
        path = fill_path(template, samples, agreement_id)
        if path is None:
            print(f"skipped {template}: the store holds nothing to name in its path", file=sys.stderr)
            continue
        parameters = [p for p in operation.get("parameters", []) if p.get("in") == "query"]
        names = [p["name"] for p in parameters]
        pageable = "cursor" in names
        full = frozenset(names) not in seen_parameter_sets
        seen_parameter_sets.add(frozenset(names))
        variants = [{}]
        sorts = []
        for parameter in parameters:
            name = parameter["name"]
            if name in SKIP:
                continue
            values = enum_of(parameter)
            if name == "sort":
                sorts = values
                variants += [{"sort": v} for v in values]
            elif not full:
                continue
            elif name == "group_by":
                variants += [{"group_by": v} for v in values]
                variants += [{"group_by": f"{a},{b}"} for a, b in itertools.combinations(values, 2)]
            elif values:
                variants += [{name: v} for v in values]
            else:
                value = sample_of(name, template)
                if value is None and name == "id":
                    value = samples.get(template, {}).get("id", agreement_id)
                variants.append({name: value})
        if full:
            # An enum parameter takes its first value in a combination.
            first_values = {p["name"]: enum_of(p)[0] for p in parameters if enum_of(p)}
            for combination in COMBINATIONS:
                if all(c in names for c in combination):
                    variants.append({c: first_values.get(c) or sample_of(c, template) for c in combination})
        for params in variants:
            params = with_needs(params, names)
            if {"from", "to"} <= set(names):
                # A diff is between two revisions: each variant names both.
                params = {"from": SAMPLES["from"], "to": SAMPLES["to"], **params}
            query = urllib.parse.urlencode(params, safe=",")
            label = f"{template}{'?' + query if query else ''}"
            if label in seen_labels:
                continue
            seen_labels.add(label)
            queries.append((label, path + ("?" + filled(query) if query else ""), False))
        if pageable:
            for params in [{}] + [{"sort": s} for s in sorts]:
                params = with_needs(params, names)
                query = urllib.parse.urlencode(params, safe=",")
                label = f"{template}?{query + '&' if query else ''}cursor=(page {DEEP_HOPS + 1})"
                queries.append((label, path + ("?" + query if query else ""), True))
    return connection, queries


def filled(query):
    for placeholder, value in DYNAMIC.items():
        query = query.replace(urllib.parse.quote_plus(placeholder), urllib.parse.quote(value, safe=""))
    return query


def deep_path(connection, path):
    """The page DEEP_HOPS pages behind the first, or None if there is none."""
    separator = "&" if "?" in path else "?"
    current = path
    for _ in range(DEEP_HOPS):
        page = get_json(connection, current)
        cursor = page.get("next_cursor")
        if not cursor:
            return None
        current = f"{path}{separator}cursor={urllib.parse.quote(cursor)}"
    return current


def measure(connection, path):
    timings = []
    status = None
    started_all = time.perf_counter()
    for n in range(WARM + MAX_SAMPLES):
        started = time.perf_counter()
        status, _ = get(connection, path)
        elapsed = (time.perf_counter() - started) * 1000
        if n == 0 and elapsed > SLOW_MS:
            # A query this slow is a miss whatever its median: one sample.
            return elapsed, elapsed, status, 1
        if n >= WARM:
            timings.append(elapsed)
            if len(timings) >= MIN_SAMPLES and time.perf_counter() - started_all > MAX_SECONDS:
                break
    timings.sort()
    p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
    return statistics.median(timings), p99, status, len(timings)


def main_list(base):
    _, queries = enumerate_queries(base)
    for label, _, _ in queries:
        print(label)
    print(f"{len(queries)} queries", file=sys.stderr)


def main_measure(base, label, out):
    connection, queries = enumerate_queries(base)
    refused = []
    with open(out, "a") as sink:
        for name, path, deep in queries:
            if deep:
                path = deep_path(connection, path)
                if path is None:
                    continue
            try:
                median, p99, status, n = measure(connection, path)
            except TimeoutError:
                # Recorded as a miss at the timeout, on a new connection.
                median, p99, status, n = TIMEOUT * 1000, TIMEOUT * 1000, 200, 1
                connection = connect(base)
            if status != 200:
                # A refusal (a 400 for a combination the API rejects) is
                # timed, not a failure, and listed at the end.
                refused.append(f"{name}: {status}")
            row = {"run": label, "query": name, "median": round(median, 3), "p99": round(p99, 3), "status": status, "n": n}
            sink.write(json.dumps(row) + "\n")
            print(f"{label} {median:9.2f} ms  {status}  {name}", file=sys.stderr, flush=True)
    if refused:
        print("not answered 200:\n" + "\n".join(refused), file=sys.stderr)


def main_report(files):
    """Markdown: per query, the median at each run and the ratio of the
    largest store to the smallest per backend; then every miss."""
    rows = {}
    runs = []
    for file in files:
        with open(file) as source:
            for line in source:
                row = json.loads(line)
                backend, size = row["run"].split()
                if (backend, int(size)) not in runs:
                    runs.append((backend, int(size)))
                rows.setdefault(row["query"], {})[(backend, int(size))] = row["median"]
    backends = sorted({b for b, _ in runs}, key=["sqlite", "postgres"].index)
    sizes = {b: sorted(s for bb, s in runs if bb == b) for b in backends}
    header = ["query"]
    for b in backends:
        header += [f"{b} {sizes[b][0]:,}", f"{b} {sizes[b][-1]:,}", f"{b} ×"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    misses = []
    for query, figures in rows.items():
        cells = [f"`{query}`"]
        for b in backends:
            small, large = figures.get((b, sizes[b][0])), figures.get((b, sizes[b][-1]))
            cells += [f"{small:.2f}" if small is not None else "–", f"{large:.2f}" if large is not None else "–"]
            if small is None or large is None:
                cells.append("–")
                continue
            ratio = large / small
            if query.startswith("write:"):
                miss = ratio > WRITE_RATIO
            else:
                miss = ratio > RATIO and large >= FLOOR_MS
            cells.append(f"**{ratio:.1f}**" if miss else f"{ratio:.1f}")
            if miss:
                misses.append((b, query, small, large, ratio))
        print("| " + " | ".join(cells) + " |")
    print()
    print(f"{len(rows)} queries and writes; misses (a query over {RATIO:g}× and over {FLOOR_MS:g} ms at the larger size, a write over {WRITE_RATIO:g}×): {len(misses)}")
    for b, query, small, large, ratio in misses:
        print(f"- {b}: `{query}` {small:.2f} → {large:.2f} ms ({ratio:.1f}×)")


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "list" and len(sys.argv) == 3:
        main_list(sys.argv[2])
    elif command == "measure" and len(sys.argv) == 5:
        main_measure(*sys.argv[2:5])
    elif command == "report" and len(sys.argv) >= 3:
        main_report(sys.argv[2:])
    else:
        sys.exit(__doc__)
