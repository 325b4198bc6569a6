-- Refresh token rotation as clients do it: each 200 response carries the next refresh token,
-- which goes back in this thread's queue; the old one is spent.
--   wrk -s refresh.lua URL -- SEEDS_FILE THREADS "Basic ..."
-- SEEDS_FILE holds one refresh token per line (a few per connection). A failed refresh loses
-- its chain; with the queue empty a request goes out with an invalid token (and fails), and
-- `starved` counts it.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")

function init(args)
  queue = my_lines(args[1], tonumber(args[2]))
  headers = {
    ["Authorization"] = args[3],
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }
  wrapped = 0
  starved = 0
end

function request()
  local token = table.remove(queue, 1)
  if token == nil then
    starved = starved + 1
    token = "spent"
  end
  return wrk.format("POST", "/smart/token", headers,
    "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
  if status == 200 then
    local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if token then
      table.insert(queue, token)
    end
  end
end
