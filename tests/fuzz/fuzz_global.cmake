# fuzz_global reads the name server's wire types and bounds from
# transport/global_int.h, which needs the runtime's distribution interface.
target_include_directories(fuzz_global PRIVATE ${PROJECT_SOURCE_DIR}/runtime/dist)
