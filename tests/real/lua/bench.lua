-- tests/real/lua/bench.lua: a deterministic workload for lua5.4 whose output
-- is compared byte for byte between the plain and the instrumented build,
-- and whose C call counts the server must report exactly as uftrace counts
-- them.  Nothing here raises an error or yields from C (both longjmp, which
-- uftrace 0.13 cannot follow in a -finstrument-functions binary: that part
-- is errors.lua, checked against counts known from the script itself).

-- recursion in Lua: luaV_execute re-enters itself only through C calls
local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
print("fib(20)", fib(20))

-- table.sort with a Lua comparator: C (auxsort) calling Lua (lua_call)
local t, x = {}, 12345
for i = 1, 3000 do
  x = (x * 1103515245 + 12345) % 2147483648
  t[i] = x
end
table.sort(t, function(a, b) return a > b end)
print("sort", t[1], t[1500], t[3000])

-- strings: format, gsub with a callback, concat, find, rep, byte/char
local parts = {}
for i = 1, 2000 do parts[#parts + 1] = string.format("%05d:%x", i, i * 7) end
local s = table.concat(parts, ",")
local n = 0
local r = s:gsub("(%d+):(%x+)", function(a, b) n = n + 1; return b .. a end)
print("gsub", #s, n, #r, r:sub(1, 40))
print("find", s:find("01000:", 1, true), select(2, s:gsub(",", ";")))
local up = {}
for i = 1, 500 do up[i] = string.char(65 + i % 26):rep(i % 7 + 1):lower():upper() end
print("rep", #table.concat(up), up[500], string.byte(up[499], 1))

-- metatables: __add, __index, __tostring, __len, __call
local V = {}
V.__index = V
V.__add = function(a, b) return setmetatable({x = a.x + b.x, y = a.y + b.y}, V) end
V.__tostring = function(v) return "(" .. v.x .. "," .. v.y .. ")" end
V.__len = function(v) return math.abs(v.x) + math.abs(v.y) end
V.__call = function(v, k) return v.x * k end
function V.norm1(v) return #v end
local acc = setmetatable({x = 0, y = 0}, V)
for i = 1, 2000 do acc = acc + setmetatable({x = i, y = -2 * i}, V) end
print("vectors", tostring(acc), acc:norm1(), acc(3))

-- garbage: short-lived tables and strings, then two full collections
local keep = {}
for i = 1, 20000 do
  local tt = {i, tostring(i), {i}}
  if i % 100 == 0 then keep[#keep + 1] = tt end
end
collectgarbage()
collectgarbage()
print("keep", #keep, keep[#keep][2], keep[1][3][1])

-- a string-keyed table (hashing, rehash) listed in sorted order
local words = {}
for w in ("the quick brown fox jumps over the lazy dog and the end of it"):rep(40):gmatch("%a+") do
  words[w] = (words[w] or 0) + 1
end
local big = {}
for i = 1, 3000 do big["k" .. i] = i end
local ks, total = {}, 0
for k in pairs(words) do ks[#ks + 1] = k end
for _, v in pairs(big) do total = total + v end
table.sort(ks)
for _, k in ipairs(ks) do io.write(k, "=", words[k], " ") end
print()
print("big", total)

-- integer/float arithmetic and math/utf8/string.pack from C libraries
local f = 0.0
for i = 1, 5000 do f = f + math.sqrt(i) * math.sin(i) // 1 + (i % 7) / 3 end
print("math", string.format("%.6f", f), math.type(f), math.tointeger(2^20), 7 // 2, -7 % 3)
print("utf8", utf8.len("h\u{e9}llo w\u{f6}rld"), utf8.char(72, 233, 0x4e2d))
print("pack", #string.pack("i4i8d", 1, 2, 3.5), string.unpack("i4", string.pack("i4", -42)))
