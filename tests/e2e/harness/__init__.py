"""Test harness for the Portcullis end-to-end suite.

Modules, by what they hold:

- ``paths``: where the repository, the npm peers and the gateway binary are.
- ``procs``: starting and stopping child processes, waiting for HTTP endpoints, free ports.
- ``upstreams``: the reference MCP servers (server-everything, server-filesystem) as upstreams.
- ``gateway``: writing a gateway config (DESIGN §3.3) and running ``portcullis run``.
- ``clients``: the official Python SDK client (``mcp``) for both protocol eras.
- ``rawhttp``: hand-made HTTP requests for hostile-input tests.
"""
