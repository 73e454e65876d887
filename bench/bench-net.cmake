# Network benchmarks (owned by the networking subsystem); see bench/NET.md.
#   echo_server  Troupe's echo server (the benchmark's server)
#   idle_conns   memory per idle connection of Troupe (runs loadgen)
#   loadgen      closed-loop load generator / idle meter for any server
#   echo_uv      the raw libuv peer (one loop per CPU, SO_REUSEPORT)
tp_add_bench(echo_server)
tp_add_bench(idle_conns)
add_executable(loadgen loadgen.c)
target_link_libraries(loadgen PRIVATE Threads::Threads)
add_executable(echo_uv peers/libuv/echo_uv.c)
target_link_libraries(echo_uv PRIVATE PkgConfig::LIBUV Threads::Threads)
set_target_properties(loadgen echo_uv PROPERTIES RUNTIME_OUTPUT_DIRECTORY
                      ${CMAKE_CURRENT_BINARY_DIR})
add_dependencies(idle_conns loadgen)
