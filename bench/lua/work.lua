-- work.lua: the Lua workload of bench/run.py: recursion, table sort, string
-- formatting and matching in the interpreter (Lua 5.4 from Debian's source).
-- `lua work.lua N` does it N times (default once) and prints the same line.
local function fib(n) if n < 2 then return n end return fib(n-1) + fib(n-2) end
local function work()
  local t = {}
  for i = 1, 200000 do t[i] = tostring(i * 7 % 1000) end
  table.sort(t)
  local s = 0
  for i = 1, #t, 3 do s = s + #t[i] end
  local parts = {}
  for i = 1, 50000 do parts[#parts+1] = string.format("%d:%s", i, t[i]) end
  local joined = table.concat(parts, ",")
  local n = 0
  for w in joined:gmatch("[^,]+") do n = n + 1 end
  return fib(25), s, n
end
local a, b, c
for _ = 1, tonumber(arg and arg[1]) or 1 do a, b, c = work() end
print(a, b, c)
