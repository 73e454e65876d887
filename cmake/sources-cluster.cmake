# cluster/ sources: Troupe nodes over NATS (libnats, a private dependency).
# Without libnats the library still builds: cluster/none.c answers every
# cluster call with -ENOTSUP and every remote pid as unreachable.
pkg_check_modules(LIBNATS IMPORTED_TARGET libnats>=3.3)
if(LIBNATS_FOUND)
  list(APPEND TP_SOURCES
    cluster/wire.c
    cluster/cluster.c
    cluster/node.c
    cluster/remote.c
    cluster/names.c
    cluster/link.c
    cluster/tree.c
  )
  list(APPEND TP_PRIVATE_LIBS PkgConfig::LIBNATS)
  list(APPEND TP_PC_REQUIRES_PRIVATE libnats)
  list(APPEND TP_PC_FIND "LIBNATS libnats")
  set(TP_HAVE_CLUSTER ON)
else()
  message(STATUS "libnats not found: building without cluster support")
  list(APPEND TP_SOURCES cluster/none.c)
  set(TP_HAVE_CLUSTER OFF)
endif()
