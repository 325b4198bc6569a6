-- Shared by the wrk scripts of bench/: thread numbering, line splitting, and a `done` that
-- prints one machine-readable line (BENCH {...}) for bench/loadgen.py to parse.
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function split(line, separator)
  local fields = {}
  for field in (line .. separator):gmatch("(.-)" .. separator) do
    table.insert(fields, field)
  end
  return fields
end

-- This thread's share of the lines of `path`: line i goes to thread i % count. With fewer
-- lines than threads, a thread shares line id % #lines with others.
function my_lines(path, count)
  local all, mine = {}, {}
  for line in io.lines(path) do
    if line ~= "" then
      table.insert(all, line)
    end
  end
  if #all < count then
    return { all[id % #all + 1] }
  end
  for number, line in ipairs(all) do
    if (number - 1) % count == id then
      table.insert(mine, line)
    end
  end
  return mine
end

function done(summary, latency, requests)
  local wrapped, starved = 0, 0
  for _, thread in ipairs(threads) do
    wrapped = wrapped + (thread:get("wrapped") or 0)
    starved = starved + (thread:get("starved") or 0)
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, '
      .. '"p50_us": %d, "p99_us": %d, "max_us": %d, "wrapped": %d, "starved": %d}\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, wrapped, starved))
end
