# bench: make bench.
