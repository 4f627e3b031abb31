-- One stateless 2026-07-28 tools/call per request (keep-alive, no session), and a one-line
-- JSON summary at the end (`BENCH {...}`) for bench/report.py.
--
-- Environment: BENCH_TOOL (default "echo"), BENCH_API_KEY (sent as X-API-Key when set), and
-- for peer gateways: BENCH_AUTH_BEARER (sent as `Authorization: Bearer ...` when set),
-- BENCH_PROTOCOL_VERSION (default "2026-07-28"; any other version sends a 2025-era call:
-- no Mcp-Method/Mcp-Name headers and no per-request `_meta`) and BENCH_SESSION_ID (sent as
-- Mcp-Session-Id when set, from an `initialize` done once beforehand).
local tool = os.getenv("BENCH_TOOL") or "echo"
local key = os.getenv("BENCH_API_KEY") or ""
local bearer = os.getenv("BENCH_AUTH_BEARER") or ""
local version = os.getenv("BENCH_PROTOCOL_VERSION") or ""
local session = os.getenv("BENCH_SESSION_ID") or ""
if version == "" then
  version = "2026-07-28"
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = version
if key ~= "" then
  wrk.headers["X-API-Key"] = key
end
if bearer ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. bearer
end
if session ~= "" then
  wrk.headers["Mcp-Session-Id"] = session
end
if version == "2026-07-28" then
  wrk.headers["Mcp-Method"] = "tools/call"
  wrk.headers["Mcp-Name"] = tool
  wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"' .. tool ..
    '","arguments":{"message":"hello from the benchmark"},"_meta":{' ..
    '"io.modelcontextprotocol/protocolVersion":"2026-07-28",' ..
    '"io.modelcontextprotocol/clientCapabilities":{}}}}'
else
  wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"' .. tool ..
    '","arguments":{"message":"hello from the benchmark"}}}'
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"socket_errors":%d,"non2xx":%d,' ..
    '"p50_us":%d,"p99_us":%d,"p999_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.mean))
end
