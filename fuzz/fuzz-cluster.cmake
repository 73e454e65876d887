# fuzz_cluster_wire: the cluster's frame decoder (cluster/wire.c), which
# reads whatever anyone publishes on the cluster's NATS subjects.
if(TP_HAVE_CLUSTER)
  tp_add_fuzz(cluster_wire)
endif()
