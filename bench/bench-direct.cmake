# Direct-style actors (direct/): see bench/DIRECT.md.
tp_add_bench(direct_pingpong SOURCES direct_pingpong.c)
tp_add_bench(direct_idle SOURCES direct_idle.c)
tp_add_bench(direct_skynet SOURCES direct_skynet.c)
