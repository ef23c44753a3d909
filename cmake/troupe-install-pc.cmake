# Writes and installs a pkg-config file (troupe.pc, troupe-node.pc).
# Included from an install(CODE) rule, so CMAKE_INSTALL_PREFIX is the prefix
# being installed to right now. The caller sets TROUPE_PC_IN (the template),
# TROUPE_PC_NAME (the file's name without .pc), TROUPE_PC_WORK,
# TROUPE_PC_LIBDIR, TROUPE_PC_INCLUDEDIR, TROUPE_PC_DATADIR, TROUPE_PC_VERSION and, for
# templates that use it, TROUPE_PC_LIBS_PRIVATE.

set(TROUPE_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")

# GNUInstallDirs dirs are usually relative to the prefix; keep them so in the
# .pc file, so that a relocated tree can be fixed by editing one line.
foreach(kind LIBDIR INCLUDEDIR DATADIR)
  if(IS_ABSOLUTE "${TROUPE_PC_${kind}}")
    set(TROUPE_PC_${kind}_ABS "${TROUPE_PC_${kind}}")
  else()
    set(TROUPE_PC_${kind}_ABS "\${prefix}/${TROUPE_PC_${kind}}")
  endif()
endforeach()

if(IS_ABSOLUTE "${TROUPE_PC_LIBDIR}")
  set(_troupe_pc_dest "${TROUPE_PC_LIBDIR}/pkgconfig")
else()
  set(_troupe_pc_dest "${CMAKE_INSTALL_PREFIX}/${TROUPE_PC_LIBDIR}/pkgconfig")
endif()

configure_file("${TROUPE_PC_IN}" "${TROUPE_PC_WORK}/${TROUPE_PC_NAME}.pc" @ONLY)
# file(INSTALL) honours DESTDIR and records the file in install_manifest.txt.
file(INSTALL "${TROUPE_PC_WORK}/${TROUPE_PC_NAME}.pc" DESTINATION "${_troupe_pc_dest}")
