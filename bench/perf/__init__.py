"""`ssevsws perf` (issue 7): the harness measures its own parts against the Python limit
and the popular alternatives, in one run, server and client pinned to different cores.

Modules: `procs` (start/pin/stop servers and clients by PID), `flood` (the asyncio load
client, run as a subprocess), `ceiling` (load generator ceiling and end-to-end runs with
the project's own transports), `report` (ratios, perf.md, figures, `compare_perf`),
`cmd` (the subcommand and the phase order).
"""
