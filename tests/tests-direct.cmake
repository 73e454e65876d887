# Direct-style actors (direct/).
tp_add_test(direct LABELS unit TIMEOUT 120)
tp_add_test(direct_many LABELS unit stress TIMEOUT 120)
# Direct-style connection actors and passive reads (tp_tcp_recv).
tp_add_test(direct_net LABELS unit net TIMEOUT 120
  SOURCES test_direct_net.c test_net_util.c)
