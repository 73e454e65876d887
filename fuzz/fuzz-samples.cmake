# The samples' input paths, compiled here from their sources (the fuzz
# build has TP_BUILD_SAMPLES=OFF): the HTTP sample's request handling over
# libhttp-parser, and the chat's line framing and command parser.
find_path(TP_FUZZ_HTTP_PARSER_INC http_parser.h)
find_library(TP_FUZZ_HTTP_PARSER_LIB http_parser)
if(TP_FUZZ_HTTP_PARSER_INC AND TP_FUZZ_HTTP_PARSER_LIB)
  tp_add_fuzz(sample_http SOURCES fuzz_sample_http.c
    ${PROJECT_SOURCE_DIR}/samples/http/http_conn.c
    LIBS ${TP_FUZZ_HTTP_PARSER_LIB})
  target_include_directories(fuzz_sample_http PRIVATE
    ${TP_FUZZ_HTTP_PARSER_INC})
else()
  message(WARNING "fuzz: http_parser not found: no fuzz_sample_http")
endif()
tp_add_fuzz(chat_proto SOURCES fuzz_chat_proto.c
  ${PROJECT_SOURCE_DIR}/samples/chat/chat_proto.c)
tp_add_fuzz(fleet_proto SOURCES fuzz_fleet_proto.c
  ${PROJECT_SOURCE_DIR}/samples/fleet/fleet_proto.c)
