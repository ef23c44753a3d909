# Turns the observer's web page (transport/observer_ui/) into a C source
# in the build tree, so that the node library serves it without reading
# any file at run time: one byte array per file and a table
# {path, content type, bytes, length} that transport/observer_assets.c
# looks paths up in. Run as a script at build time:
#   cmake -DUI_DIR=<dir> -DOUT=<file.c> -P troupe_embed_ui.cmake
# Every file of UI_DIR is served as /ui/NAME; the types come from the
# extensions below (a file of another extension is an error, so that
# nothing is served with a guessed type). Text files only: the route
# serves them as NUL-terminated text (a file with a NUL byte is an error).
if(NOT UI_DIR OR NOT OUT)
  message(FATAL_ERROR "troupe_embed_ui.cmake: set UI_DIR and OUT")
endif()
file(GLOB files RELATIVE ${UI_DIR} ${UI_DIR}/*)
list(SORT files)
set(arrays "")
set(table "")
set(i 0)
foreach(f ${files})
  if(f MATCHES "\\.html$")
    set(type "text/html; charset=utf-8")
  elseif(f MATCHES "\\.js$")
    set(type "text/javascript; charset=utf-8")
  elseif(f MATCHES "\\.css$")
    set(type "text/css; charset=utf-8")
  elseif(f MATCHES "\\.svg$")
    set(type "image/svg+xml")
  else()
    message(FATAL_ERROR "troupe_embed_ui.cmake: ${f}: no content type for this extension")
  endif()
  file(READ ${UI_DIR}/${f} hex HEX)
  string(REGEX MATCH "^(..)*00" nul "${hex}")
  if(nul)
    message(FATAL_ERROR "troupe_embed_ui.cmake: ${f} has a NUL byte: text files only")
  endif()
  string(LENGTH "${hex}" hexlen)
  math(EXPR len "${hexlen} / 2")
  # 16 bytes a line, then each byte as 0xNN.
  string(REGEX REPLACE "([0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f])"
    "\\1\n" hex "${hex}")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  string(APPEND arrays "/* ${f} */\nstatic const unsigned char a${i}[] = {\n${hex}0};\n\n")
  string(APPEND table "    {\"/ui/${f}\", \"${type}\", a${i}, ${len}},\n")
  math(EXPR i "${i} + 1")
endforeach()
set(text "/* Made by cmake/troupe_embed_ui.cmake from transport/observer_ui/ at build time: do not edit. */
#include <stddef.h>

#include \"observer_assets.h\"

${arrays}const tr__obs_asset tr__observer_assets[] = {
${table}};

const size_t tr__observer_nassets = ${i};
")
# Written only when it changed, so that a rebuild compiles nothing more.
if(EXISTS ${OUT})
  file(READ ${OUT} old)
  if(old STREQUAL text)
    return()
  endif()
endif()
file(WRITE ${OUT} "${text}")
