# Install rules: `cmake --install build/release --prefix PREFIX` places
#
#   PREFIX/bin/lockstep                               the command
#   PREFIX/lib/liblockstep_{base,kernels,transport,partitioner}.a
#   PREFIX/lib/liblockstep_{tokenizer,model,formats,convert,engine,job}.a
#   PREFIX/include/lockstep/<component>/*.h           public headers only
#   PREFIX/lib/cmake/lockstep/lockstep-config.cmake   find_package(lockstep)
#   PREFIX/lib/pkgconfig/lockstep.pc                  pkg-config lockstep
#   PREFIX/share/lockstep/modulefiles/lockstep/VERSION.lua   Lmod modulefile
#
# Imported targets: lockstep::base, lockstep::kernels, lockstep::transport,
# lockstep::partitioner, the runtime's parts lockstep::tokenizer,
# lockstep::model, lockstep::formats, lockstep::convert, lockstep::engine,
# lockstep::job, and lockstep::runtime for all six (each brings what it
# links).
# The libraries are static; the package config therefore finds every
# dependency the libraries link, private ones included (docs/site-guide.md,
# "Building against lockstep").
include(CMakePackageConfigHelpers)

set(LOCKSTEP_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/lockstep" CACHE STRING
    "Where lockstep-config.cmake goes, relative to the install prefix")
set(LOCKSTEP_INSTALL_MODULEFILEDIR "${CMAKE_INSTALL_DATADIR}/lockstep/modulefiles" CACHE STRING
    "Where the Lmod modulefile (lockstep/VERSION.lua) goes, relative to the install prefix")

# Each library and the folder of its public headers. runtime's six parts
# live under runtime/ (runtime/CMakeLists.txt); lockstep::runtime is an
# interface target that links them all.
set(_lockstep_components base kernels transport partitioner tokenizer model formats convert engine
    job)
set(_lockstep_runtime_parts tokenizer model formats convert engine job)

# Dependencies found through pkg-config (PREFIX=module, as in the top-level
# CMakeLists.txt): the package config re-creates their PkgConfig::PREFIX
# targets, and lockstep.pc requires the modules.
set(LOCKSTEP_PKG_CONFIG_DEPS SENTENCEPIECE=sentencepiece PCRE2=libpcre2-8 UTF8PROC=libutf8proc)
if(LOCKSTEP_WITH_UCX)
  list(APPEND LOCKSTEP_PKG_CONFIG_DEPS UCX=ucx)
endif()
set(_lockstep_libraries "")
foreach(component IN LISTS _lockstep_components)
  set_target_properties(lockstep_${component} PROPERTIES EXPORT_NAME ${component})
  list(APPEND _lockstep_libraries lockstep_${component})
  set(_dir ${PROJECT_SOURCE_DIR}/${component})
  if(component IN_LIST _lockstep_runtime_parts)
    set(_dir ${PROJECT_SOURCE_DIR}/runtime/${component})
  endif()
  install(DIRECTORY ${_dir}/include/
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
          FILES_MATCHING PATTERN "*.h")
endforeach()
set_target_properties(lockstep_runtime PROPERTIES EXPORT_NAME runtime)
list(APPEND _lockstep_libraries lockstep_runtime)
set_target_properties(lockstep_compile_options PROPERTIES EXPORT_NAME compile_options)

install(TARGETS ${_lockstep_libraries}
  EXPORT lockstepTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT lockstepTargets
  NAMESPACE lockstep::
  FILE lockstep-targets.cmake
  DESTINATION ${LOCKSTEP_INSTALL_CMAKEDIR})

configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/lockstep-config.cmake.in
  ${PROJECT_BINARY_DIR}/lockstep-config.cmake
  INSTALL_DESTINATION ${LOCKSTEP_INSTALL_CMAKEDIR}
  PATH_VARS CMAKE_INSTALL_BINDIR)
# 0.x: a minor release may change the API.
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/lockstep-config-version.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/lockstep-config.cmake
  ${PROJECT_BINARY_DIR}/lockstep-config-version.cmake
  DESTINATION ${LOCKSTEP_INSTALL_CMAKEDIR})

# Files that name the install prefix (the pkg-config file, the modulefile) are
# written at install time, so that `cmake --install --prefix P` puts P in
# them, not the CMAKE_INSTALL_PREFIX of the configure step. Their templates
# are configured twice: now for everything but the prefix (the template
# writes @LOCKSTEP_PREFIX@ for it, which now becomes "@CMAKE_INSTALL_PREFIX@"),
# then at install time for the prefix alone.
set(LOCKSTEP_PREFIX "@CMAKE_INSTALL_PREFIX@")
function(lockstep_install_with_prefix template staged destination)
  configure_file(${template} ${PROJECT_BINARY_DIR}/install-templates/${staged} @ONLY)
  get_filename_component(name ${staged} NAME)
  install(CODE "
    set(_dir \"${destination}\")
    if(NOT IS_ABSOLUTE \"\${_dir}\")
      set(_dir \"\${CMAKE_INSTALL_PREFIX}/\${_dir}\")
    endif()
    configure_file(\"${PROJECT_BINARY_DIR}/install-templates/${staged}\"
                   \"${PROJECT_BINARY_DIR}/install-time/${name}\" @ONLY)
    file(INSTALL \"${PROJECT_BINARY_DIR}/install-time/${name}\" DESTINATION \"\${_dir}\")")
endfunction()

# pkg-config. MPI and HDF5 come through their own .pc files when this
# machine has them (Debian: ompi-cxx, hdf5-openmpi; Spack: ompi-cxx or mpich,
# hdf5), else as the paths CMake found. The libraries are static, so every
# dependency is in Requires (a plain `pkg-config --libs lockstep` links).
pkg_search_module(_lockstep_pc_mpi QUIET ompi-cxx mpich mpi)
pkg_search_module(_lockstep_pc_hdf5 QUIET hdf5-openmpi hdf5-mpi hdf5)
set(LOCKSTEP_PC_REQUIRES "fmt nlohmann_json tbb libcrypto")
set(LOCKSTEP_PC_LIBS_EXTRA "")
set(LOCKSTEP_PC_CFLAGS_EXTRA "")
if(_lockstep_pc_mpi_FOUND)
  string(APPEND LOCKSTEP_PC_REQUIRES " ${_lockstep_pc_mpi_MODULE_NAME}")
else()
  list(JOIN MPI_CXX_LIBRARIES " " _mpi_libs)
  string(APPEND LOCKSTEP_PC_LIBS_EXTRA " ${_mpi_libs}")
  foreach(dir IN LISTS MPI_CXX_INCLUDE_DIRS)
    string(APPEND LOCKSTEP_PC_CFLAGS_EXTRA " -I${dir}")
  endforeach()
endif()
if(_lockstep_pc_hdf5_FOUND)
  string(APPEND LOCKSTEP_PC_REQUIRES " ${_lockstep_pc_hdf5_MODULE_NAME}")
else()
  list(JOIN HDF5_LIBRARIES " " _hdf5_libs)
  string(APPEND LOCKSTEP_PC_LIBS_EXTRA " ${_hdf5_libs}")
endif()
foreach(entry IN LISTS LOCKSTEP_PKG_CONFIG_DEPS)
  string(REGEX REPLACE "^[^=]*=" "" module "${entry}")
  string(APPEND LOCKSTEP_PC_REQUIRES " ${module}")
endforeach()
lockstep_install_with_prefix(${PROJECT_SOURCE_DIR}/cmake/lockstep.pc.in lockstep.pc
                             ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The Lmod modulefile (launch/modulefiles/lockstep.lua.in): one depends_on
# line per module in LOCKSTEP_MODULE_DEPENDS.
set(LOCKSTEP_MODULE_DEPENDS "" CACHE STRING
    "Modules the lockstep modulefile loads (;-separated, e.g. openmpi/4.1.4;hdf5/1.10.8-mpi)")
set(LOCKSTEP_MODULE_DEPENDS_LUA "")
foreach(module IN LISTS LOCKSTEP_MODULE_DEPENDS)
  string(APPEND LOCKSTEP_MODULE_DEPENDS_LUA "depends_on(\"${module}\")\n")
endforeach()
lockstep_install_with_prefix(${PROJECT_SOURCE_DIR}/launch/modulefiles/lockstep.lua.in
                             modulefiles/${PROJECT_VERSION}.lua
                             ${LOCKSTEP_INSTALL_MODULEFILEDIR}/lockstep)
