# Actor services: the msgpack reader and printer (see fuzz/fuzz_pack.c).
tp_add_fuzz(pack LIBS PkgConfig::MSGPACK)
