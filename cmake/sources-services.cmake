# Actor services (owned by the services subsystem): structured messages
# (msgpack builder, bounded reader, printer) and the gen_server behaviour.
list(APPEND TP_SOURCES
  actors/pack.c actors/pack_read.c actors/pack_print.c
  actors/gen_server.c
)
