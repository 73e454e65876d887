# Cluster tests (owned by the cluster subsystem): each starts its own
# nats-server on a free loopback port (skipped without one).
if(TP_HAVE_CLUSTER)
  tp_add_test(cluster LABELS net cluster TIMEOUT 300
    LIBS PkgConfig::LIBNATS tp_console_testlib)
endif()
if(TP_HAVE_CLUSTER)
  tp_add_test(cluster_garbage LABELS net cluster TIMEOUT 120
    LIBS PkgConfig::LIBNATS)
endif()
