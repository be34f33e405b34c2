-- tests/real/lua/errors.lua: Lua errors and coroutine yields, both of which
-- leave C frames by longjmp (lua5.4 built as C: LUAI_THROW is _longjmp).
-- The frames a longjmp skips never run their exit hook; the runtime must
-- still count each of them once.  The counts are known from this script:
--   luaB_pcall 300, luaB_error 110 (100 under pcall, 10 in coroutines),
--   luaB_coresume 70 (60 + 10), luaB_yield 50, luaB_cocreate 11,
--   lua_resume 70, luaD_throw 160 (110 errors + 50 yields from C).
local caught = 0
for i = 1, 300 do
  local ok, msg = pcall(function(x)
    if x % 3 == 0 then error("bad " .. x, 0) end
    return x
  end, i)
  if not ok then caught = caught + 1; assert(msg == "bad " .. i) end
end
print("pcall", 300 - caught, caught)

-- one generator: 50 yields, then it returns (60 resumes in all: the last
-- 9 find it dead and fail without running it)
local gen = coroutine.create(function()
  for i = 1, 50 do coroutine.yield(i) end
  return "done"
end)
local sum, dead = 0, 0
for _ = 1, 60 do
  local ok, v = coroutine.resume(gen)
  if ok and type(v) == "number" then sum = sum + v elseif not ok then dead = dead + 1 end
end
print("yield", sum, dead, coroutine.status(gen))

-- ten coroutines that raise an error, caught by resume
local failed = 0
for i = 1, 10 do
  local co = coroutine.create(function() error("co " .. i, 0) end)
  local ok, msg = coroutine.resume(co)
  if not ok and msg == "co " .. i then failed = failed + 1 end
end
print("coerror", failed)
