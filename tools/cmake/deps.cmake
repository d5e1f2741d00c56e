# Finds every third-party dependency and names the Debian package when one is missing.
# tools/setup.sh installs all of them.
include(FindPkgConfig)

set(STRATA_MISSING_PACKAGES "")
macro(strata_require found_var debian_pkg)
  if(NOT ${found_var})
    list(APPEND STRATA_MISSING_PACKAGES ${debian_pkg})
  endif()
endmacro()

find_package(Threads REQUIRED)

# Debian's oneDNN is built with the OpenCL GPU runtime; its CMake config requires OpenCL
# and would stop the configure with a bare error, so look for OpenCL first.
find_package(OpenCL QUIET)
strata_require(OpenCL_FOUND ocl-icd-opencl-dev)
if(OpenCL_FOUND)
  find_package(dnnl CONFIG QUIET)
endif()
strata_require(dnnl_FOUND libdnnl-dev)

pkg_check_modules(HWLOC QUIET IMPORTED_TARGET hwloc)
strata_require(HWLOC_FOUND libhwloc-dev)

pkg_check_modules(URING QUIET IMPORTED_TARGET liburing)
strata_require(URING_FOUND liburing-dev)

find_package(TBB CONFIG QUIET)
strata_require(TBB_FOUND libtbb-dev)

find_package(mimalloc CONFIG QUIET)
strata_require(mimalloc_FOUND libmimalloc-dev)

find_package(nlohmann_json CONFIG QUIET)
strata_require(nlohmann_json_FOUND nlohmann-json3-dev)

find_package(CLI11 CONFIG QUIET)
strata_require(CLI11_FOUND libcli11-dev)

pkg_check_modules(HTTPLIB QUIET IMPORTED_TARGET cpp-httplib)
strata_require(HTTPLIB_FOUND libcpp-httplib-dev)

pkg_check_modules(PCRE2 QUIET IMPORTED_TARGET libpcre2-8)
strata_require(PCRE2_FOUND libpcre2-dev)

# ICU: Unicode normalization and case mapping (Engram's tokenizer compression).
find_package(ICU QUIET COMPONENTS uc)
strata_require(ICU_FOUND libicu-dev)

if(STRATA_TESTS)
  find_package(GTest CONFIG QUIET)
  strata_require(GTest_FOUND libgtest-dev)
  find_package(benchmark CONFIG QUIET)
  strata_require(benchmark_FOUND libbenchmark-dev)
endif()

if(STRATA_MISSING_PACKAGES)
  list(JOIN STRATA_MISSING_PACKAGES " " _pkgs)
  message(FATAL_ERROR
    "strata: missing dependencies. Install them with:\n"
    "  apt-get install ${_pkgs}\n"
    "or run: bash tools/setup.sh")
endif()

# CUDA is optional: found automatically at /usr/local/cuda, STRATA_CUDA=OFF turns it off. The
# sanitizer build leaves it out (CUDA is compiled once, in the plain build).
set(STRATA_HAVE_CUDA OFF)
if(STRATA_CUDA AND NOT STRATA_SANITIZE)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # RTX 4090, H100/H200, RTX 5090 — and nothing else, to keep compile time small.
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 89 90 120)
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(STRATA_HAVE_CUDA ON)
  else()
    message(STATUS "strata: no CUDA compiler found; building without gpu-kernels/")
  endif()
endif()
message(STATUS "strata: CUDA ${STRATA_HAVE_CUDA}")
