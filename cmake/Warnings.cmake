# Warnings are errors for our own targets; apply with vireo_warnings(<target>).
function(vireo_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Werror
    $<$<CXX_COMPILER_ID:GNU>:-Wshadow=local> -Wnon-virtual-dtor -Wcast-align -Wunused -Woverloaded-virtual
    -Wnull-dereference -Wformat=2 -Wimplicit-fallthrough)
endfunction()

# A library of one subsystem: src/<name>/ -> target vireo_<name>.
# vireo_subsystem(<name> LIBS <deps...>): the library vireo_<name> made of every
# .cpp in the calling folder except main.cpp (globbed, so adding a file needs
# no CMake edit). A folder with no .cpp yet is a header-only INTERFACE library.
function(vireo_subsystem name)
  cmake_parse_arguments(S "" "" "LIBS" ${ARGN})
  file(GLOB _srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  list(FILTER _srcs EXCLUDE REGEX "/main\\.cpp$")
  if(_srcs)
    add_library(vireo_${name} STATIC ${_srcs})
    target_include_directories(vireo_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(vireo_${name} PUBLIC ${S_LIBS})
    vireo_warnings(vireo_${name})
  else()
    add_library(vireo_${name} INTERFACE)
    target_include_directories(vireo_${name} INTERFACE ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(vireo_${name} INTERFACE ${S_LIBS})
  endif()
endfunction()
