# Cluster benchmarks (owned by the cluster subsystem); see bench/CLUSTER.md.
#   cluster_rtt  cross-node request round trip and one-way throughput
#                between two nodes through a local nats-server it starts
if(TP_HAVE_CLUSTER)
  tp_add_bench(cluster_rtt LIBS PkgConfig::LIBNATS)
endif()
