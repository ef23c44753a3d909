# Unit tests of the transport's self-contained parts: its crypto over mbed
# TLS (SHA-256, HMAC, HKDF), the budgeted codec, and the client endpoint
# (whose end-to-end cases run the shell recipe of docs/client.md with
# protoc, openssl and nngcat, and check the README's copy of it).
troupe_dist_test(test_crypto dist 120 ${CMAKE_CURRENT_SOURCE_DIR}/test_crypto.c)
troupe_dist_test(test_codec dist 300 ${CMAKE_CURRENT_SOURCE_DIR}/test_codec.c)
troupe_dist_test(test_client_verify dist 120
  ${CMAKE_CURRENT_SOURCE_DIR}/test_client_verify.c)
foreach(t test_client test_client_conns test_client_tls)
  troupe_dist_test(${t} dist 300 ${CMAKE_CURRENT_SOURCE_DIR}/${t}.c)
  target_compile_definitions(${t} PRIVATE
    TT_PROTO_DIR="${PROJECT_SOURCE_DIR}/proto"
    TT_CLIENT_DOC="${PROJECT_SOURCE_DIR}/docs/client.md"
    TT_README="${PROJECT_SOURCE_DIR}/README.md")
endforeach()
