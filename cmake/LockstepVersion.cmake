# Records the git revision at configure time for `lockstep --version`.
# Re-run CMake to refresh it; a build from a tarball reports "unknown".
find_package(Git QUIET)
set(LOCKSTEP_GIT_REVISION "unknown")
if(GIT_FOUND AND EXISTS "${CMAKE_CURRENT_SOURCE_DIR}/.git")
  execute_process(
    COMMAND "${GIT_EXECUTABLE}" describe --always --dirty --abbrev=12
    WORKING_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}"
    OUTPUT_VARIABLE _lockstep_rev OUTPUT_STRIP_TRAILING_WHITESPACE
    ERROR_QUIET RESULT_VARIABLE _lockstep_rev_rc)
  if(_lockstep_rev_rc EQUAL 0 AND _lockstep_rev)
    set(LOCKSTEP_GIT_REVISION "${_lockstep_rev}")
  endif()
endif()
