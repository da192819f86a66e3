# tests: shell-script and multi-rank tests.
