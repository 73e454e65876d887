# net/ sources (owned by the networking subsystem).
list(APPEND TP_SOURCES
  net/addr.c
  net/opts.c
  net/net.c
  net/conn.c
  net/io.c
  net/wrap.c
  net/connect.c
  net/listen.c
  net/proxy.c
)
