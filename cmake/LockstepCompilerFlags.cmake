# Compiler flags shared by every lockstep target (via lockstep_compile_options).
#
# -ffp-contract=off: the determinism contract (docs/determinism.md) needs every
# fused multiply-add written explicitly; letting the compiler contract a*b+c
# differently per target would make the SIMD and scalar paths drift apart.
# No -ffast-math for the same reason.
add_library(lockstep_compile_options INTERFACE)
add_library(lockstep::compile_options ALIAS lockstep_compile_options)
target_compile_options(lockstep_compile_options INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -ffp-contract=off -fno-fast-math>
  $<$<COMPILE_LANGUAGE:C>:-Wall -Wextra -ffp-contract=off>)
if(LOCKSTEP_WERROR)
  target_compile_options(lockstep_compile_options INTERFACE -Werror)
endif()
install(TARGETS lockstep_compile_options EXPORT lockstepTargets)

# Sanitizer builds (the asan preset sets LOCKSTEP_SANITIZE=address,undefined).
set(LOCKSTEP_SANITIZE "" CACHE STRING "Comma-separated -fsanitize= list (empty: none)")
if(LOCKSTEP_SANITIZE)
  target_compile_options(lockstep_compile_options INTERFACE
    -fsanitize=${LOCKSTEP_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(lockstep_compile_options INTERFACE -fsanitize=${LOCKSTEP_SANITIZE})
endif()

# Fuzzing (the asan preset): coverage instrumentation for libFuzzer in every
# target; the fuzz targets themselves link -fsanitize=fuzzer (tests/fuzz/).
if(LOCKSTEP_BUILD_FUZZERS)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "LOCKSTEP_BUILD_FUZZERS needs clang (libFuzzer); use the asan preset")
  endif()
  target_compile_options(lockstep_compile_options INTERFACE -fsanitize=fuzzer-no-link)
endif()

# Instruction-set flags for the per-ISA kernel translation units. Only those
# files get them; everything else stays baseline x86-64 so the binary runs on
# any x86-64 CPU and picks its kernels at run time.
set(LOCKSTEP_AVX2_FLAGS -mavx2 -mfma -mf16c)
set(LOCKSTEP_AVX512_FLAGS -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c)
