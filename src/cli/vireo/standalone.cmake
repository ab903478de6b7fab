# vireo_standalone_executable(<exe> <library> SOURCES <main.cpp...>)
#
# Why: `vireo` is started once per command (like virsh), so its process
# start-up is part of the latency of every operation. Linked the usual way it
# loads libstdc++, fmt, spdlog and pugixml as shared objects, and the dynamic
# loader spends most of the start-up mapping and relocating them (measured on
# `vireo dominfo`: 10.0 ms of CPU and 180 page faults per invocation; linked
# standalone: 7.1 ms and 112, most of it now the kernel's exec).
#
# What: the ordinary vireo_* static libraries, plus the out-of-line parts of
# fmt and spdlog compiled into the executable (../standalone_fmt.cpp, standalone/static_spdlog.cpp),
# libstdc++/libgcc and pugixml linked statically, no PIE (no load-time
# relocations of its own), and --as-needed so that libfmt.so and libspdlog.so,
# still on the link line through the libraries' usage requirements, are not
# recorded as needed. Only C libraries (libc, and zlib/zstd when the storage
# code is linked in) stay shared.
# On top of that, the link goes through standalone/static-link.sh, which
# links fully static (-static, the static archives of libc, zlib, zstd, ...)
# when the archives are installed, and else falls back to the link above
# (VIREO_STATIC_CLI=OFF: never try). A static `vireo` starts without the
# dynamic loader: `vireo dominfo` 4.2 ms of CPU instead of 7.0 ms.
# Set VIREO_STANDALONE_CLI=OFF to link the executable the ordinary way.
function(vireo_standalone_executable exe lib)
  cmake_parse_arguments(S "" "" "SOURCES" ${ARGN})
  add_executable(${exe} ${S_SOURCES} ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/standalone/static_spdlog.cpp
    ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/../standalone_fmt.cpp)
  find_library(VIREO_PUGIXML_STATIC NAMES libpugixml.a)
  # All of the static pugixml, so that it resolves what the libraries need
  # (wherever they stand on the link line) before the shared one is seen.
  if(VIREO_PUGIXML_STATIC)
    target_link_libraries(${exe} PRIVATE ${lib} "$<LINK_LIBRARY:WHOLE_ARCHIVE,${VIREO_PUGIXML_STATIC}>")
  else()
    target_link_libraries(${exe} PRIVATE ${lib})
  endif()
  target_link_options(${exe} PRIVATE -static-libstdc++ -static-libgcc -no-pie -Wl,--as-needed)
  option(VIREO_STATIC_CLI "Try to link vireo fully static (falls back when static archives are missing)" ON)
  if(VIREO_STATIC_CLI)
    set_property(TARGET ${exe} PROPERTY CXX_LINKER_LAUNCHER ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/standalone/static-link.sh)
  endif()
endfunction()
