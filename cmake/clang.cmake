# Toolchain file: build vireo with clang (16 or newer) instead of GCC 12.
#   cmake -DCMAKE_TOOLCHAIN_FILE=cmake/clang.cmake ...
# Used by the sanitizer tree of scripts/test and by the fuzz build
# (tests/fuzz/run-fuzzers.sh). GCC 12 stays the compiler of build/, the one
# users run; clang compiles the -O0 sanitizer build in under half GCC's time
# (measured: qemu_lifecycle.cpp 10.9 s against 24.6 s of CPU) and libFuzzer
# needs it.
foreach(_v 19 18 17 16)
  find_program(VIREO_CLANGXX clang++-${_v})
  if(VIREO_CLANGXX)
    find_program(VIREO_CLANG clang-${_v} REQUIRED)
    break()
  endif()
endforeach()
if(NOT VIREO_CLANGXX)
  message(FATAL_ERROR "no clang++ 16 or newer (scripts/setup installs clang-16: scripts/deps/test-conf.txt)")
endif()
set(CMAKE_C_COMPILER ${VIREO_CLANG})
set(CMAKE_CXX_COMPILER ${VIREO_CLANGXX})
# -Wno-unknown-warning-option: the shared warning set has GCC-only spellings.
# __cpp_concepts: clang 16 implements what libstdc++ 12's <expected> needs
# (P0848) but still advertises concepts as 201907, which hides std::expected.
set(CMAKE_CXX_FLAGS_INIT "-Wno-unknown-warning-option -Wno-builtin-macro-redefined -U__cpp_concepts -D__cpp_concepts=202002L")
set(CMAKE_C_FLAGS_INIT "-Wno-unknown-warning-option")
