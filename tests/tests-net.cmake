# Network tests (owned by the networking subsystem). Loopback only; each
# bounded in time and in connections.
tp_add_test(net_echo LABELS net TIMEOUT 180
  SOURCES test_net_echo.c test_net_util.c)
