# Actor services benchmarks (see bench/SERVICES.md): request/reply round
# trips and timers. bench/run_services.sh runs them against Erlang.
tp_add_bench(request)
tp_add_bench(timers)
