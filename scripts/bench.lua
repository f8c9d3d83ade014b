-- wrk script of scripts/bench.
--
-- Without BENCH_READS, wrk sends its one static request (the URL and the -H
-- headers given on its command line), so /healthz and every endpoint pay the
-- same, minimal, load-generator cost. With BENCH_READS (paths separated by
-- spaces), each thread cycles through those reads and makes every
-- BENCH_WRITE_EVERY-th request (default 20: 5%) a PATCH of the next of
-- BENCH_WRITE_PATHS (sources, spread so that writers rarely race on one row)
-- with the key BENCH_KEY.
--
-- done() prints one line for the script to read:
--   BENCH <requests/s> <p50 ms> <p99 ms> <requests> <errors> <socket errors> <timeouts>
-- where errors counts socket errors, timeouts and answers of 400 or more.

local reads_spec = os.getenv("BENCH_READS")

local threads = {}

function setup(thread)
   thread:set("id", #threads + 1)
   table.insert(threads, thread)
end

if reads_spec then
   local reads = {}
   local write_every = tonumber(os.getenv("BENCH_WRITE_EVERY") or "20")
   local write_paths = {}
   local write_headers = {
      ["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or ""),
      ["Content-Type"] = "application/merge-patch+json",
   }
   local n, r = 0, 0

   function init(args)
      for path in string.gmatch(reads_spec, "%S+") do
         table.insert(reads, wrk.format("GET", path))
      end
      for path in string.gmatch(os.getenv("BENCH_WRITE_PATHS"), "%S+") do
         table.insert(write_paths, path)
      end
   end

   function request()
      n = n + 1
      if n % write_every == 0 then
         -- A new value each time, so every write really changes the source.
         local writes = math.floor(n / write_every)
         local path = write_paths[(writes * 2 + id) % #write_paths + 1]
         local body = string.format('{"publisher": "bench %d-%d"}', id, writes)
         return wrk.format("PATCH", path, write_headers, body)
      end
      r = r + 1
      return reads[r % #reads + 1]
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format("BENCH %.1f %.3f %.3f %d %d %d %d\n",
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50) / 1000,
      latency:percentile(99) / 1000,
      summary.requests,
      e.connect + e.read + e.write + e.status + e.timeout,
      e.connect + e.read + e.write,
      e.timeout))
end
