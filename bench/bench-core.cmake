# The core benchmarks (spawn, messaging, scheduling); see bench/README.md.
# Each is one executable named after it; they share core_common.c.
foreach(b spawn_idle pingpong fanin ring skynet)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${b}.c)
    tp_add_bench(${b} SOURCES ${b}.c core_common.c)
  endif()
endforeach()
tp_add_bench(outside_send SOURCES outside_send.c)
