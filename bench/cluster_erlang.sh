#!/bin/sh
# bench/cluster_erlang.sh - Erlang distribution baseline for cluster_rtt:
# two `erl -sname` nodes on this machine (epmd starts with the first).
# Prints RESULT lines like the C benchmarks. Needs erlang-nox.
set -e
command -v erl >/dev/null || { echo "erl not installed: skipping" >&2; exit 0; }
dir=$(mktemp -d)
trap 'erl -sname tpb_stop$$ -setcookie tpb -noshell -eval "rpc:call(tpb_b@$(hostname -s), init, stop, []), halt()." >/dev/null 2>&1; rm -rf "$dir"' EXIT
cp "$(dirname "$0")/cluster_erlang.erl" "$dir/"
cd "$dir"
erlc cluster_erlang.erl
erl -sname tpb_b -setcookie tpb -noshell -detached
sleep 2
erl -sname tpb_a -setcookie tpb -noshell -run cluster_erlang run "tpb_b@$(hostname -s)"
