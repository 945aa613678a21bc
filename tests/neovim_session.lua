-- What a user does with `netdsl lsp` in Neovim, and what Neovim then shows, written as JSON to
-- $NETDSL_RESULTS for tests/test_neovim.py to check. Run as
--   nvim --headless -u init.lua -c "luafile neovim_session.lua"
-- with init.lua the setup docs/commands.md gives, in a folder holding copies of the models
-- ($NETDSL_MODELS, their names separated by spaces) and crlf.net (a formatted file whose lines
-- end in \r\n). The steps run in a coroutine that yields to the editor between them (its
-- messages from the server, typed keys and popup menu need the main loop); each wait is
-- bounded, and the first failure ends the session with the error in the results.

local results = { opened = {}, notified = {} }
local session

vim.notify = function(message, level)  -- what the editor tells the user
  table.insert(results.notified, { message = message, level = level })
end

local function finish(err)
  results.error = err
  local file = assert(io.open(vim.env.NETDSL_RESULTS, "w"))
  file:write(vim.json.encode(results))
  file:close()
  vim.cmd("stopinsert")
  vim.cmd("qa!")
end

local function resume()
  local ok, err = coroutine.resume(session)
  if not ok then
    finish(debug.traceback(session, err))
  elseif coroutine.status(session) == "dead" then
    finish(nil)
  end
end

-- Yield to the editor until `ready()` (at most `seconds`, 30 by default).
local function wait(what, ready, seconds)
  local deadline = vim.uv.now() + 1000 * (seconds or 30)
  while not ready() do
    if vim.uv.now() > deadline then
      error("timed out waiting for " .. what)
    end
    vim.defer_fn(resume, 20)
    coroutine.yield()
  end
end

local published = {}  -- buffer -> how many times the server published its diagnostics
local on_publish = vim.lsp.handlers["textDocument/publishDiagnostics"]
vim.lsp.handlers["textDocument/publishDiagnostics"] = function(err, result, ctx)
  on_publish(err, result, ctx)
  local buf = vim.uri_to_bufnr(result.uri)
  published[buf] = (published[buf] or 0) + 1
end

local function shown_diagnostics(buf)
  return vim.tbl_map(function(d)
    return { line = d.lnum, col = d.col, end_col = d.end_col, message = d.message,
             severity = d.severity }
  end, vim.diagnostic.get(buf))
end

-- Open `name`, wait for its client and its first diagnostics.
local function open(name)
  vim.cmd.edit(name)
  local buf = vim.api.nvim_get_current_buf()
  wait("the server to attach to " .. name, function()
    local client = vim.lsp.get_clients({ bufnr = buf })[1]
    return client ~= nil and client.initialized
  end)
  wait("the diagnostics of " .. name, function() return (published[buf] or 0) > 0 end)
  return buf, vim.lsp.get_clients({ bufnr = buf })[1]
end

-- Wait for a publication after the `seen`th of `buf` that `fits`.
local function published_after(buf, seen, fits, what)
  wait(what, function()
    return (published[buf] or 0) > seen and fits(vim.diagnostic.get(buf))
  end)
end

local function floating_lines()
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_config(win).relative ~= "" then
      return vim.api.nvim_buf_get_lines(vim.api.nvim_win_get_buf(win), 0, -1, false)
    end
  end
end

local function close_floats()
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_config(win).relative ~= "" then
      vim.api.nvim_win_close(win, true)
    end
  end
end

local function line_of(buf, text)  -- the 1-based line that starts with `text`
  for row, line in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, false)) do
    if vim.startswith(line, text) then
      return row
    end
  end
  error("no line starts with " .. text)
end

session = coroutine.create(function()
  for name in vim.gsplit(vim.env.NETDSL_MODELS, " ", { trimempty = true }) do
    local buf, client = open(name)
    results.opened[name] = { filetype = vim.bo[buf].filetype, client = client.name,
                             encoding = client.offset_encoding,
                             diagnostics = shown_diagnostics(buf) }
  end

  local buf = open("resnet9.net")
  -- A pasted comment whose U+2028 and form feed an editor shows inside one line, then an
  -- edit to an error below it, and back.
  vim.api.nvim_buf_set_lines(buf, 0, 0, false, { "# pasted\u{2028}comment\x0c" })
  local row = line_of(buf, "prep(prep)")
  local seen = published[buf]
  vim.api.nvim_buf_set_text(buf, row - 1, 5, row - 1, 9, { "prp" })
  published_after(buf, seen, function(d) return #d > 0 end, "the error")
  results.error_row, results.error_shown = row - 1, shown_diagnostics(buf)
  seen = published[buf]
  vim.cmd.undo()
  published_after(buf, seen, function(d) return #d == 0 end, "the error to go")
  results.after_undo = shown_diagnostics(buf)

  -- Hover over the call layer1(...): the float Neovim opens.
  row = line_of(buf, "  -> layer1(")
  vim.api.nvim_win_set_cursor(0, { row, 6 })
  vim.lsp.buf.hover()
  wait("the hover", function() return floating_lines() ~= nil end)
  results.hover = floating_lines()
  close_floats()

  -- Complete a path: omni completion (<C-x><C-o>) at the end of `<- layer1/re`.
  local count = vim.api.nvim_buf_line_count(buf)
  vim.api.nvim_buf_set_lines(buf, count, count, false, { "x: add <- layer1/re" })
  vim.api.nvim_win_set_cursor(0, { count + 1, 0 })
  vim.api.nvim_feedkeys(vim.keycode("A<C-x><C-o>"), "n", false)
  wait("the completion menu", function()
    return #vim.fn.complete_info({ "items" }).items > 0
  end)
  results.completed = vim.tbl_map(function(item) return item.word end,
                                  vim.fn.complete_info({ "items" }).items)
  vim.api.nvim_feedkeys(vim.keycode("<C-e><Esc>"), "n", false)
  wait("normal mode", function() return vim.api.nvim_get_mode().mode == "n" end)
  vim.api.nvim_buf_set_lines(buf, count, count + 1, false, {})

  -- Rename the parameter layer1; then try to rename `pool`, the prelude's.
  row = line_of(buf, "param layer1")
  vim.api.nvim_win_set_cursor(0, { row, 7 })
  vim.lsp.buf.rename("width1")
  wait("the rename", function()
    return vim.startswith(vim.api.nvim_buf_get_lines(buf, row - 1, row, false)[1],
                          "param width1")
  end)
  results.renamed = vim.tbl_filter(function(line) return line:find("width1") ~= nil end,
                                   vim.api.nvim_buf_get_lines(buf, 0, -1, false))
  row = line_of(buf, "  -> layer1(width1")
  local pool = vim.api.nvim_buf_get_lines(buf, row - 1, row, false)[1]:find("pool")
  vim.api.nvim_win_set_cursor(0, { row, pool })
  local notes = #results.notified
  vim.lsp.buf.rename("x")
  wait("the refusal", function() return #results.notified > notes end)
  results.refused = results.notified[#results.notified]

  -- Format a line written carelessly; then a formatted file whose lines end in \r\n.
  row = line_of(buf, "param classes")
  vim.api.nvim_buf_set_lines(buf, row - 1, row, false, { "param classes=10   # the labels" })
  vim.lsp.buf.format({ timeout_ms = 30000 })
  results.formatted = vim.api.nvim_buf_get_lines(buf, row - 1, row, false)[1]
  vim.cmd("silent write")

  buf = open("crlf.net")
  local tick = vim.b[buf].changedtick
  vim.lsp.buf.format({ timeout_ms = 30000 })
  results.crlf = { fileformat = vim.bo[buf].fileformat, modified = vim.bo[buf].modified,
                   changed = vim.b[buf].changedtick ~= tick }
end)

vim.schedule(resume)
