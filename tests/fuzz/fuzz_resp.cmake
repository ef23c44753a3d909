# fuzz_resp: troupe-resp's RESP2 parser and reply writers, sources of the
# sample (pure C).
target_sources(fuzz_resp PRIVATE ${PROJECT_SOURCE_DIR}/samples/resp/resp_parse.c
  ${PROJECT_SOURCE_DIR}/samples/resp/resp_reply.c)
target_include_directories(fuzz_resp PRIVATE ${PROJECT_SOURCE_DIR}/samples/resp)
