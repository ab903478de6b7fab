# -DVIREO_SANITIZE=address,undefined builds everything with those sanitizers.
# UBSan is made fatal so that a finding fails the test that triggered it.
if(VIREO_SANITIZE)
  set(_san "-fsanitize=${VIREO_SANITIZE}")
  if(VIREO_SANITIZE MATCHES "undefined")
    string(APPEND _san " -fno-sanitize-recover=all")
  endif()
  string(APPEND CMAKE_CXX_FLAGS " ${_san} -fno-omit-frame-pointer")
  string(APPEND CMAKE_C_FLAGS " ${_san} -fno-omit-frame-pointer")
  string(APPEND CMAKE_EXE_LINKER_FLAGS " ${_san}")
  string(APPEND CMAKE_SHARED_LINKER_FLAGS " ${_san}")
endif()
