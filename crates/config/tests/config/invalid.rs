//! Invalid snippets: each row lists every error line expected (source path shown as `F`).

use super::support::error_lines;

const ROWS: &[(&str, &[&str])] = &[
    (
        "[limits]\ncall_timeout = \"30x\"",
        &[
            "F: limits.call_timeout: invalid duration \"30x\": expected a number followed by ms, s, m, h or d",
        ],
    ),
    (
        "[listen]\nadr = \"127.0.0.1:1\"",
        &[
            "F:2:1: unknown key `adr` (expected one of: addr, allowed_origins, tls, max_connections)",
        ],
    ),
    (
        "[limits]\nmax_json_depth = \"deep\"",
        &["F:2:18: invalid type: string \"deep\", expected i64"],
    ),
    (
        "[listen\naddr = 1",
        &["F:1:8: unclosed table, expected `]`"],
    ),
    (
        "[[upstream]]\nname = \"fs\"\ncommand = [\"a\"]\nbogus = 1",
        &[
            "F:4:1: unknown key `bogus` (expected one of: name, prefix, command, env, cwd, sandbox, url, auth, headers, dangerous_allow_plain_http, tool, resources)",
        ],
    ),
    (
        "[[upstream]]\nname = \"fs\"\ncommand = [\"a\"]\n[[upstream.tool]]\nname = \"t\"\nargs.p = { withn = [\"/x\"] }",
        &[
            "F:6:12: unknown key `withn` (expected one of: within, allow_hosts, deny_private, min, max, pattern, enum, max_length)",
        ],
    ),
    (
        "[limits]\nmax_request_bytes = true",
        &[
            "F:2:21: invalid type: boolean `true`, expected a size such as \"1MiB\" or a number of bytes",
        ],
    ),
    (
        "[limits]\nmax_request_bytes = -1\nmax_response_bytes = 0\nmax_json_depth = 0\ncall_timeout = \"0s\"\nsession_idle_timeout = \"-5m\"\nmax_sessions = -3\nstream_results_above = 0\nmax_streamed_bytes = \"1 parsec\"",
        &[
            "F: limits.max_request_bytes: invalid size -1: negative",
            "F: limits.max_response_bytes: must be greater than 0",
            "F: limits.max_json_depth: must be at least 1, not 0",
            "F: limits.call_timeout: must be greater than 0",
            "F: limits.session_idle_timeout: invalid duration \"-5m\": expected a number followed by ms, s, m, h or d",
            "F: limits.max_sessions: must be at least 1, not -3",
            "F: limits.stream_results_above: must be greater than 0",
            "F: limits.max_streamed_bytes: invalid size \"1 parsec\": expected a number of bytes, optionally followed by KiB, MiB, GiB, TiB, KB, MB, GB or TB",
        ],
    ),
    (
        "[listen]\naddr = \"localhost:8080\"\nallowed_origins = [\"http://a.example/\", \"*\"]\nmax_connections = 0",
        &[
            "F: listen.addr: invalid address \"localhost:8080\": expected IP:PORT, e.g. 127.0.0.1:8080",
            "F: listen.allowed_origins[0]: invalid origin \"http://a.example/\": expected scheme://host[:port] without path or trailing slash",
            "F: listen.allowed_origins[1]: invalid origin \"*\": expected scheme://host[:port]",
            "F: listen.max_connections: must be at least 1, not 0",
        ],
    ),
    (
        "[listen.tls]\ncert = \"certs/none.pem\"\nrequire_client_cert = true",
        &[
            "F: listen.tls.cert: cannot read /cfg/certs/none.pem: no such file or directory",
            "F: listen.tls.key: required key is missing",
            "F: listen.tls.require_client_cert: requires listen.tls.client_ca",
        ],
    ),
    (
        "[storage]\nsynchronous_commit = \"off\"",
        &["F:2:22: invalid type: string \"off\", expected a boolean"],
    ),
    (
        "[storage]\nurl = \"mysql://x\"",
        &[
            "F: storage.url: unsupported storage URL scheme \"mysql\": expected sqlite://PATH or postgres://…",
        ],
    ),
    (
        "[federation]\nseparator = \"::\"",
        &["F: federation.separator: invalid separator \"::\": at most 8 of A-Z a-z 0-9 _ . -"],
    ),
    (
        "[federation]\nseparator = \"\"",
        &["F: federation.separator: must not be empty"],
    ),
    (
        "[federation]\nseparator = \"_________\"",
        &[
            "F: federation.separator: invalid separator \"_________\": at most 8 of A-Z a-z 0-9 _ . -",
        ],
    ),
    (
        "[[upstream]]\ncommand = [\"a\"]",
        &["F: upstream[0].name: required key is missing"],
    ),
    (
        "[[upstream]]\nname = \"Bad Name\"\ncommand = [\"a\"]",
        &["F: upstream[0].name: invalid name \"Bad Name\": expected ^[a-z0-9][a-z0-9_-]{0,31}$"],
    ),
    (
        "[[upstream]]\nname = \"x\"\ncommand = [\"a\"]\nurl = \"https://a.example\"",
        &["F: upstream[0]: set exactly one of `command` or `url`, not both"],
    ),
    (
        "[[upstream]]\nname = \"x\"",
        &["F: upstream[0]: set exactly one of `command` (a local stdio server) or `url`"],
    ),
    (
        "[[upstream]]\nname = \"x\"\ncommand = []",
        &["F: upstream[0].command: must not be empty"],
    ),
    (
        "[[upstream]]\nname = \"x\"\ncommand = [\"\"]",
        &["F: upstream[0].command[0]: the program must not be empty"],
    ),
    (
        "[[upstream]]\nname = \"x\"\nurl = \"https://a.example\"\nenv = {}\ncwd = \"/\"\n[upstream.sandbox]",
        &[
            "F: upstream[0].env: only allowed with `command` (this upstream uses `url`)",
            "F: upstream[0].cwd: only allowed with `command` (this upstream uses `url`)",
            "F: upstream[0].sandbox: only allowed with `command` (this upstream uses `url`)",
        ],
    ),
    (
        "[[upstream]]\nname = \"x\"\ncommand = [\"a\"]\nauth = { bearer = \"env:SEARCH_TOKEN\" }\nheaders = {}\ndangerous_allow_plain_http = true",
        &[
            "F: upstream[0].auth: only allowed with `url` (this upstream uses `command`)",
            "F: upstream[0].headers: only allowed with `url` (this upstream uses `command`)",
            "F: upstream[0].dangerous_allow_plain_http: only allowed with `url` (this upstream uses `command`)",
        ],
    ),
    (
        "[[upstream]]\nname = \"x\"\nurl = \"http://search.internal/mcp\"",
        &[
            "F: upstream[0].url: plain http to non-loopback host \"search.internal\" is not allowed; use https (or set dangerous_allow_plain_http = true on this upstream)",
        ],
    ),
    (
        "[[upstream]]\nname = \"x\"\nurl = \"https://user:pw@a.example/mcp\"",
        &["F: upstream[0].url: credentials in the URL are not allowed; configure them as a secret"],
    ),
    (
        "[[upstream]]\nname = \"x\"\nurl = \"ftp://a.example\"",
        &["F: upstream[0].url: invalid URL \"ftp://a.example\": expected http:// or https://"],
    ),
    (
        "[[upstream]]\nname = \"x\"\nurl = \"https://a.example\"\nauth = { bearer = \"env:NOPE\" }\nheaders = { Authorization = \"env:SEARCH_TOKEN\", Host = \"x\", \"Bad Name\" = \"v\" }",
        &[
            "F: upstream[0].auth.bearer: environment variable NOPE is not set",
            "F: upstream[0].headers.\"Bad Name\": invalid header name \"Bad Name\"",
            "F: upstream[0].headers.Host: set by the gateway; cannot be configured",
        ],
    ),
    (
        "[[upstream]]\nname = \"x\"\nurl = \"https://a.example\"\nauth = { bearer = \"t\" }\nheaders = { authorization = \"u\" }",
        &["F: upstream[0].headers.Authorization: conflicts with auth.bearer; set only one"],
    ),
    (
        "[[upstream]]\nname = \"x\"\nurl = \"https://a.example\"\nauth = { bearer = \"t\", client_credentials = { token_url = \"ftp://idp\", scope = \"s\" } }",
        &[
            "F: upstream[0].auth.client_credentials.token_url: invalid URL \"ftp://idp\": expected http:// or https://",
            "F: upstream[0].auth.client_credentials.client_id: is required",
            "F: upstream[0].auth.client_credentials.client_secret: is required",
        ],
    ),
    (
        "[[upstream]]\nname = \"x\"\nurl = \"https://a.example\"\nauth = { bearer = \"t\", client_credentials = { token_url = \"https://idp.example/token\", client_id = \"gw\", client_secret = \"s\" } }",
        &["F: upstream[0].auth.client_credentials: conflicts with auth.bearer; set only one"],
    ),
    (
        "[[upstream]]\nname = \"x\"\ncommand = [\"a\"]\nenv = { \"BAD-NAME\" = \"1\", OK = \"env:MISSING_VAR\" }\ncwd = \"/nonexistent-dir\"",
        &[
            "F: upstream[0].env.BAD-NAME: invalid environment variable name \"BAD-NAME\"",
            "F: upstream[0].env.OK: environment variable MISSING_VAR is not set",
            "F: upstream[0].cwd: cannot read /nonexistent-dir: no such file or directory",
        ],
    ),
    (
        "[[upstream]]\nname = \"a\"\ncommand = [\"a\"]\n[[upstream]]\nname = \"a\"\ncommand = [\"b\"]",
        &["F: upstream[1].name: duplicate name \"a\" (also upstream[0])"],
    ),
    (
        "[[upstream]]\nname = \"a\"\nprefix = \"\"\ncommand = [\"a\"]\n[[upstream]]\nname = \"b\"\nprefix = \"\"\ncommand = [\"b\"]\n[[upstream]]\nname = \"c\"\nprefix = \"a__\"\ncommand = [\"c\"]\n[[upstream]]\nname = \"a\"\nprefix = \"a b\"\ncommand = [\"c\"]",
        &[
            "F: upstream[1].prefix: prefix \"\" is also used by upstream[0]: their names would collide",
            "F: upstream[3].prefix: invalid prefix \"a b\": at most 64 of A-Z a-z 0-9 _ . -",
            "F: upstream[3].name: duplicate name \"a\" (also upstream[0])",
        ],
    ),
    (
        "[[upstream]]\nname = \"x\"\ncommand = [\"a\"]\n[upstream.sandbox]\nnetwork = \"all\"\nmemory = \"lots\"\ncpu_time = \"1\"\nprocesses = 0\nstorage_quota = -1\nfs_read = [\"~/data\", \"\"]",
        &[
            "F: upstream[0].sandbox.fs_read[0]: \"~/data\": `~` is not expanded; use an absolute path",
            "F: upstream[0].sandbox.fs_read[1]: must not be empty",
            "F: upstream[0].sandbox.network: invalid value \"all\": expected \"none\" or a list of \"host:port\"",
            "F: upstream[0].sandbox.memory: invalid size \"lots\": expected a number of bytes, optionally followed by KiB, MiB, GiB, TiB, KB, MB, GB or TB",
            "F: upstream[0].sandbox.cpu_time: invalid duration \"1\": expected a number followed by ms, s, m, h or d",
            "F: upstream[0].sandbox.processes: must be at least 1, not 0",
            "F: upstream[0].sandbox.storage_quota: invalid size -1: negative",
        ],
    ),
    (
        "[[upstream]]\nname = \"x\"\ncommand = [\"a\"]\n[upstream.sandbox]\nnetwork = [\"api.example\", 443, \"h:0\"]",
        &[
            "F: upstream[0].sandbox.network[0]: invalid address \"api.example\": expected host:port",
            "F: upstream[0].sandbox.network[1]: expected a \"host:port\" string, found integer",
            "F: upstream[0].sandbox.network[2]: invalid address \"h:0\": invalid port \"0\"",
        ],
    ),
    (
        "[[upstream]]\nname = \"x\"\ncommand = [\"a\"]\n[upstream.sandbox]\nnetwork = 5",
        &[
            "F: upstream[0].sandbox.network: invalid integer: expected \"none\" or a list of \"host:port\"",
        ],
    ),
    (
        "[[upstream]]\nname = \"x\"\ncommand = [\"a\"]\n[[upstream.tool]]\nread_only = true\n[[upstream.tool]]\nname = \"t\"\n[[upstream.tool]]\nname = \"t\"\nargs.a = { min = 5, max = 1 }\nargs.b = { pattern = \"(unclosed\" }\nargs.c = { within = [\"/x\"], allow_hosts = [\"a.example\"] }\nargs.d = { min = 1, pattern = \"x\" }\nargs.e = { enum = [] }\nargs.f = { allow_hosts = [\"a.*.example\"] }\nargs.g = { max_length = -1 }\nargs.h = { min = nan }",
        &[
            "F: upstream[0].tool[0].name: required key is missing",
            "F: upstream[0].tool[2].name: duplicate rule for tool \"t\" (also upstream[0].tool[1])",
            "F: upstream[0].tool[2].args.a.min: min (5) is greater than max (1)",
            "F: upstream[0].tool[2].args.b.pattern: invalid regex: unclosed group",
            "F: upstream[0].tool[2].args.c: `within` (a path) cannot be combined with `allow_hosts`/`deny_private` (a URL)",
            "F: upstream[0].tool[2].args.d: `min`/`max` apply to numbers and cannot be combined with path, URL or string rules",
            "F: upstream[0].tool[2].args.e.enum: must not be empty (no value would be allowed)",
            "F: upstream[0].tool[2].args.f.allow_hosts[0]: invalid host pattern \"a.*.example\": expected a host name, *.domain, an IP address or *",
            "F: upstream[0].tool[2].args.g.max_length: must be at least 0, not -1",
            "F: upstream[0].tool[2].args.h.min: must be a finite number, not NaN",
        ],
    ),
    (
        "[rate_limit]\nbackend = \"memcached://x\"\ndefault = \"lots\"\n[[rate_limit.rule]]\nprincipal = \"\"\n[[rate_limit.rule]]\nlimit = \"0/min\"",
        &[
            "F: rate_limit.backend: expected \"local\" or a redis:// or rediss:// URL",
            "F: rate_limit.default: invalid rate \"lots\": expected COUNT/UNIT with UNIT one of s, min, h or d (e.g. \"10/min\")",
            "F: rate_limit.rule[0].principal: must not be empty",
            "F: rate_limit.rule[0].limit: required key is missing",
            "F: rate_limit.rule[1].limit: invalid rate \"0/min\": the count must be at least 1",
        ],
    ),
    (
        "[rate_limit]\nbackend = \"env:SEARCH_TOKEN\"",
        &["F: rate_limit.backend: expected \"local\" or a redis:// or rediss:// URL"],
    ),
    (
        "[auth]\n[[auth.jwt]]\nissuer = \"https://idp\"\njwks_url = \"http://idp.example/jwks\"\n[[auth.jwt]]\nissuer = \"https://idp\"\njwks_url = \"https://idp/jwks\"\naudience = \"a\"\n[auth.introspection]\nurl = \"https://idp/i\"\nclient_secret = \"env:NOPE\"\n[auth.mtls]\nprincipal_from = \"email\"",
        &[
            "F: auth.jwt[0].jwks_url: plain http to non-loopback host \"idp.example\" is not allowed; use https",
            "F: auth.jwt[0].audience: required key is missing",
            "F: auth.introspection.client_id: required key is missing",
            "F: auth.introspection.client_secret: environment variable NOPE is not set",
            "F: auth.mtls.principal_from: unknown value \"email\": expected \"san_uri\" or \"subject_cn\"",
        ],
    ),
    (
        "[storage]\nurl = \"postgres://db/p\"\n[auth]\napi_keys = true\nresource = \"https://gw.example/mcp#x\"\nrequired_scopes = [\"mcp\", \"two words\", \"\"]\nmax_failures = \"lots\"",
        &[
            "F: auth.key_pepper: required with a postgres:// storage.url when auth.api_keys = true (every replica must hash keys with the same pepper); e.g. key_pepper = \"env:PORTCULLIS_KEY_PEPPER\"",
            "F: auth.resource: must not contain a query or fragment (RFC 8707)",
            "F: auth.required_scopes[1]: \"two words\" is not a scope token (no spaces, quotes or backslashes)",
            "F: auth.required_scopes[2]: \"\" is not a scope token (no spaces, quotes or backslashes)",
            "F: auth.max_failures: invalid rate \"lots\": expected COUNT/UNIT with UNIT one of s, min, h or d (e.g. \"10/min\")",
        ],
    ),
    (
        "[auth]\nkey_pepper = \"env:SEARCH_TOKEN\"\nresource = \"http://gw.example/mcp\"",
        &[
            "F: auth.key_pepper: must be at least 16 bytes (32 random bytes recommended, e.g. `openssl rand -hex 32`)",
            "F: auth.resource: plain http to non-loopback host \"gw.example\" is not allowed; use https",
        ],
    ),
    (
        "[authz]\npolicies = [\"policies/base.cedar\", \"\"]\nroles_claim = \"\"",
        &[
            "F: authz.policies[0]: policy file /cfg/policies/base.cedar not found",
            "F: authz.policies[1]: must not be empty",
            "F: authz.roles_claim: must not be empty",
        ],
    ),
    (
        "[guard]\nredact = [\"secrets\", \"everything\"]\n[[guard.redact_pattern]]\nname = \"a\"\npattern = \"[\"\n[[guard.redact_pattern]]\nname = \"a\"\npattern = \"b\"\n[[guard.redact_pattern]]",
        &[
            "F: guard.redact[1]: unknown rule set \"everything\": expected \"secrets\" or \"pii\"",
            "F: guard.redact_pattern[0].pattern: invalid regex: unclosed character class",
            "F: guard.redact_pattern[2].name: required key is missing",
            "F: guard.redact_pattern[2].pattern: required key is missing",
        ],
    ),
    (
        "[guard]\nscan_action = \"ignore\"\n[[upstream]]\nname = \"fs\"\ncommand = [\"a\"]\n[upstream.resources]\nmin = 1\n[[upstream.tool]]\nname = \"t\"\nredact = \"nowhere\"",
        &[
            "F: upstream[0].tool[0].redact: unknown scope \"nowhere\": expected \"results\" or \"logs\"",
            "F: upstream[0].resources: `min`/`max` do not apply to resource URIs",
            "F: guard.scan_action: unknown action \"ignore\": expected \"block\" or \"warn\"",
        ],
    ),
    (
        "[audit]\nsigning_key = \"file:keys/missing.pem\"\nencryption_key = \"env:\"\nretention = \"forever\"\ncheckpoint_records = 0\n[[audit.sink]]\nkind = \"jsonl\"\nurl = \"https://x\"\n[[audit.sink]]\nkind = \"kafka\"\n[[audit.sink]]\n[[audit.sink]]\nkind = \"webhook\"\n[[audit.sink]]\nkind = \"syslog\"\naddress = \"siem\"\n[[audit.sink]]\nkind = \"otlp\"\nendpoint = \"grpc://x\"",
        &[
            "F: audit.signing_key: cannot read secret file /cfg/keys/missing.pem: no such file or directory",
            "F: audit.encryption_key: invalid environment variable name \"\"",
            "F: audit.retention: invalid duration \"forever\": expected a number followed by ms, s, m, h or d",
            "F: audit.checkpoint_records: must be at least 1, not 0",
            "F: audit.sink[0].url: not used by kind = \"jsonl\"",
            "F: audit.sink[0].path: required key is missing",
            "F: audit.sink[1].kind: unknown kind \"kafka\": expected jsonl, syslog, otlp or webhook",
            "F: audit.sink[2].kind: required key is missing",
            "F: audit.sink[3].url: required key is missing",
            "F: audit.sink[4].address: invalid address \"siem\": expected host:port",
            "F: audit.sink[5].endpoint: invalid URL \"grpc://x\": expected http:// or https://",
        ],
    ),
    (
        "[[audit.sink]]\nkind = \"syslog\"\ntransport = \"smtp\"\n[[audit.sink]]\nkind = \"syslog\"\ntransport = \"tcp\"\n[[audit.sink]]\nkind = \"syslog\"\naddress = \"siem:514\"\nca = \"ca.pem\"\n[[audit.sink]]\nkind = \"syslog\"\naddress = \"siem:6514\"\ntransport = \"tls\"\nca = \"missing-ca.pem\"\n[[audit.sink]]\nkind = \"jsonl\"\npath = \"a.jsonl\"\nmax_size = \"huge\"\nkeep = 0\n[[audit.sink]]\nkind = \"webhook\"\nurl = \"https://x\"\nkeep = 2",
        &[
            "F: audit.sink[0].transport: unknown transport \"smtp\": expected udp, tcp or tls",
            "F: audit.sink[1].address: required with transport = \"tcp\" or \"tls\" (only UDP can use the local /dev/log)",
            "F: audit.sink[2].ca: only used with transport = \"tls\"",
            "F: audit.sink[3].ca: cannot read /cfg/missing-ca.pem: no such file or directory",
            "F: audit.sink[4].max_size: invalid size \"huge\": expected a number of bytes, optionally followed by KiB, MiB, GiB, TiB, KB, MB, GB or TB",
            "F: audit.sink[4].keep: must be at least 1, not 0",
            "F: audit.sink[5].keep: not used by kind = \"webhook\"",
        ],
    ),
    (
        "[approval]\ntimeout = \"0m\"\napprovers_role = \"\"\n[anomaly]\nenabled = true\n[[anomaly.alert]]\nkind = \"webhook\"\nurl = \"https://a.example\"\npath = \"x\"",
        &[
            "F: approval.timeout: must be greater than 0",
            "F: approval.approvers_role: must not be empty",
            "F: anomaly.alert[0].path: not used by kind = \"webhook\"",
        ],
    ),
];

#[test]
fn invalid_snippets() {
    let mut failures = Vec::new();
    for (text, expected) in ROWS {
        let got = error_lines(text);
        if got != *expected {
            failures.push(format!("--- for:\n{text}\n--- got:\n{got:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Unknown keys no longer stop parsing: they are reported with every validation error.
#[test]
fn unknown_key_reported_with_bad_value() {
    let got = error_lines(
        "[listen]\naddr = \"127.0.0.1:8080\"\nbogus_listen_key = 1\n\n[limits]\nmax_request_bytes = \"lots\"\n",
    );
    assert_eq!(
        got,
        [
            "F:3:1: unknown key `bogus_listen_key` (expected one of: addr, allowed_origins, tls, max_connections)",
            "F: limits.max_request_bytes: invalid size \"lots\": expected a number of bytes, optionally followed by KiB, MiB, GiB, TiB, KB, MB, GB or TB",
        ]
    );
}
