# The git revision shown by `lockstep --version`.
#
# Included from CMakeLists.txt: sets LOCKSTEP_GIT_REVISION at configure time
# (used by the package files). Run as a script at every build by launch/'s
# lockstep_version target:
#   cmake -DSOURCE_DIR=... -DVERSION=... -DTEMPLATE=version.h.in -DOUTPUT=... -P LockstepVersion.cmake
# it rewrites the version header only when the revision changed, so a commit
# made without re-running CMake still shows (and nothing recompiles when it
# did not change). A build from a tarball reports "unknown".
function(lockstep_git_revision source_dir out_var)
  set(revision "unknown")
  find_program(LOCKSTEP_GIT git)
  if(LOCKSTEP_GIT AND EXISTS "${source_dir}/.git")
    execute_process(
      COMMAND "${LOCKSTEP_GIT}" describe --always --dirty --abbrev=12
      WORKING_DIRECTORY "${source_dir}"
      OUTPUT_VARIABLE described OUTPUT_STRIP_TRAILING_WHITESPACE
      ERROR_QUIET RESULT_VARIABLE rc)
    if(rc EQUAL 0 AND described)
      set(revision "${described}")
    endif()
  endif()
  set(${out_var} "${revision}" PARENT_SCOPE)
endfunction()

if(CMAKE_SCRIPT_MODE_FILE)
  lockstep_git_revision("${SOURCE_DIR}" LOCKSTEP_GIT_REVISION)
  set(PROJECT_VERSION "${VERSION}")
  configure_file("${TEMPLATE}" "${OUTPUT}" @ONLY)  # writes only when the text changed
else()
  lockstep_git_revision("${CMAKE_CURRENT_SOURCE_DIR}" LOCKSTEP_GIT_REVISION)
endif()
