"""The fault proxy: a bad network between client and server, above TCP (issue 15).

`tc netem` is not available in this kernel, so the project brings its own: an asyncio TCP
proxy that adds per-direction latency and jitter, caps bandwidth, turns segment loss into
retransmission stalls, cuts connections (FIN, RST, or silently), and blackholes or hands
over the whole network on a schedule — all deterministic from a seed, every fault logged
per connection (`core.faultlog`).

Modules: `profile` (network profiles as data, `bench/networks/*.toml`, validated),
`schedule` (sans-I/O: what happens to which byte when), `proxy` (the asyncio Protocols),
`timing` (absolute-time timers, the release wheel, the proxy's own lateness),
`__main__` (``python -m bench.faultproxy``, its own process so its CPU is measured apart).
"""
