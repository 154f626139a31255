"""The skeleton every child program shares (refserver, faultproxy, the test servers).

One module per job: `ready_line` (the one stdout line that says "listening"), `ready`
(start a child and wait for that line), `bind_address` (what to bind, is it loopback),
`serve` (serve until SIGTERM/SIGINT), `logs` (stderr logging), `parent_death` (die with
the parent). `numbers` parses ranged numbers for every command line, the pack's options too.
"""
