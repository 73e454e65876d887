# Direct-style actors (direct/): see bench/DIRECT.md.
tp_add_bench(direct_pingpong SOURCES direct_pingpong.c)
if(TP_DIRECT_ASM STREQUAL "direct/ctx_x86_64.S")
  # It times the inline switch (direct/direct_int.h): no red zone.
  target_compile_options(direct_pingpong PRIVATE -mno-red-zone)
  target_compile_definitions(direct_pingpong PRIVATE TP__NO_RED_ZONE=1)
endif()
tp_add_bench(direct_idle SOURCES direct_idle.c)
tp_add_bench(direct_skynet SOURCES direct_skynet.c)
# Idle supervised direct-style connections (runs loadgen --idle).
tp_add_bench(direct_conns SOURCES direct_conns.c)
add_dependencies(direct_conns loadgen)
