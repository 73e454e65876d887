# Actor services: msgpack payloads and gen_server (see include/troupe/pack.h
# and include/troupe/gen_server.h).
tp_add_test(pack LABELS unit TIMEOUT 120 LIBS PkgConfig::MSGPACK)
tp_add_test(gen_server LABELS unit TIMEOUT 120)
