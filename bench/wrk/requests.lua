-- Sends pre-built requests from a file, each thread cycling through its own share of lines.
--   wrk -s requests.lua URL -- FILE THREADS
-- A line is tab-separated: METHOD, PATH, BODY (may be empty), then "Name: value" headers.
-- Single-use items (client assertions, codes) must not come round twice: `wrapped` counts the
-- times a thread started its share again, and the driver reports it.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")

function init(args)
  local prepared = {}
  for _, line in ipairs(my_lines(args[1], tonumber(args[2]))) do
    local fields = split(line, "\t")
    local headers = {}
    for i = 4, #fields do
      local name, value = fields[i]:match("^([^:]+):%s*(.*)$")
      headers[name] = value
    end
    local body = fields[3] ~= "" and fields[3] or nil
    table.insert(prepared, wrk.format(fields[1], fields[2], headers, body))
  end
  requests_ = prepared
  index = 0
  wrapped = 0
end

function request()
  index = index + 1
  if index > #requests_ then
    index = 1
    wrapped = wrapped + 1
  end
  return requests_[index]
end
