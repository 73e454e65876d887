# Direct-style actors (direct/): see bench/DIRECT.md.
tp_add_bench(direct_pingpong SOURCES direct_pingpong.c)
tp_add_bench(direct_idle SOURCES direct_idle.c)
tp_add_bench(direct_skynet SOURCES direct_skynet.c)
# Idle supervised direct-style connections (runs loadgen --idle).
tp_add_bench(direct_conns SOURCES direct_conns.c)
add_dependencies(direct_conns loadgen)
