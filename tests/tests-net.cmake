# Network tests (owned by the networking subsystem). Loopback only; each
# bounded in time and in connections.
tp_add_test(net_unit LABELS unit net TIMEOUT 30)
tp_add_test(net_echo LABELS net TIMEOUT 180
  SOURCES test_net_echo.c test_net_util.c)
tp_add_test(net_close LABELS net TIMEOUT 180
  SOURCES test_net_close.c test_net_util.c)
tp_add_test(net_flow LABELS net TIMEOUT 240
  SOURCES test_net_flow.c test_net_util.c)
tp_add_test(net_overload LABELS net TIMEOUT 120
  SOURCES test_net_overload.c test_net_util.c)

# Scale: idle connections from a separate client process. 2,000 in the
# default run (label scale), 15,000 in the long one.
add_executable(test_net_client test_net_client.c)
tp_add_test(net_scale LABELS scale net TIMEOUT 300
  SOURCES test_net_scale.c test_net_util.c)
target_compile_definitions(test_net_scale PRIVATE
  TP_NET_CLIENT="$<TARGET_FILE:test_net_client>")
add_dependencies(test_net_scale test_net_client)
add_test(NAME net_scale_15k COMMAND test_net_scale)
set_tests_properties(net_scale_15k PROPERTIES LABELS "scale;long" TIMEOUT 600
  ENVIRONMENT "TP_NET_CONNS=15000;ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:handle_segv=0:handle_sigfpe=0:handle_sigill=0:handle_abort=0:handle_sigbus=0;TSAN_OPTIONS=halt_on_error=1 second_deadlock_stack=1 suppressions=${CMAKE_CURRENT_SOURCE_DIR}/tsan.supp")
tp_add_test(net_sup LABELS net TIMEOUT 120
  SOURCES test_net_sup.c test_net_util.c)
# The PROXY protocol (v1, v2) on listeners that ask for it.
tp_add_test(net_proxy LABELS net TIMEOUT 60
  SOURCES test_net_proxy.c test_net_util.c)
