# Spack package recipe for lockstep.
#
# Use it from a site or user repository:
#   spack repo create ~/spack-lockstep lockstep   # once
#   mkdir -p ~/spack-lockstep/packages/lockstep
#   cp launch/spack/package.py ~/spack-lockstep/packages/lockstep/
#   spack repo add ~/spack-lockstep
#   spack install lockstep +ucx ^openmpi fabrics=ucx
#
# Every CMake option of the top-level CMakeLists.txt (option(LOCKSTEP_...))
# is mapped below, a variant with the same default where a site chooses it;
# tests/launch/spack_recipe_test.py checks the two files agree.
# docs/site-guide.md describes the variants and the resulting install.

from spack.package import *


class Lockstep(CMakePackage):
    """Deterministic distributed multi-chip LLM inference runtime: one model
    split over many MPI ranks (tensor x pipeline parallel) that gives the same
    bits on 1 rank or 64."""

    homepage = "https://github.com/lockstep-ai/lockstep"
    git = "https://github.com/lockstep-ai/lockstep.git"

    license("Apache-2.0")

    version("main", branch="main")

    # Variants: one per user-facing CMake option, same defaults.
    variant("ucx", default=True, description="Build the UCX transport backend")
    variant("benchmarks", default=True, description="Build the benchmark programs in benchmarks/")
    variant("werror", default=False, description="Treat compiler warnings as errors")

    depends_on("c", type="build")
    depends_on("cxx", type="build")
    depends_on("cmake@3.25:", type="build")
    depends_on("pkgconfig", type="build")

    depends_on("mpi")
    depends_on("hdf5@1.10:+mpi")
    depends_on("ucx", when="+ucx")
    depends_on("tbb")
    depends_on("nlohmann-json")
    depends_on("cli11")
    depends_on("fmt")
    depends_on("openssl")
    # tokenizers (docs/tokenizers.md)
    depends_on("sentencepiece")
    depends_on("pcre2")
    depends_on("utf8proc")
    depends_on("benchmark", when="+benchmarks")
    depends_on("googletest", type="test")
    depends_on("py-torch", type="test")
    depends_on("py-h5py", type="test")
    depends_on("py-numpy", type="test")

    # C++20 (concepts, std::span, designated initialisers).
    conflicts("%gcc@:10", msg="lockstep needs C++20: GCC 11 or newer")
    conflicts("%clang@:13", msg="lockstep needs C++20: Clang 14 or newer")
    # The kernels have AVX2/AVX-512 paths chosen at run time and a portable
    # scalar path; the build itself targets baseline x86-64.
    requires("target=x86_64:", msg="lockstep's kernels are written for x86-64")

    def cmake_args(self):
        args = [
            self.define_from_variant("LOCKSTEP_WITH_UCX", "ucx"),
            self.define_from_variant("LOCKSTEP_BUILD_BENCHMARKS", "benchmarks"),
            self.define_from_variant("LOCKSTEP_WERROR", "werror"),
            # Tests are built only for `spack install --test=root`.
            self.define("LOCKSTEP_BUILD_TESTS", self.run_tests),
            # Multi-rank tests run as the building user under Spack's mpiexec.
            self.define("LOCKSTEP_MPIEXEC_EXTRA_FLAGS", ""),
            # No sanitizers or fuzzers in installed builds.
            self.define("LOCKSTEP_SANITIZE", ""),
            self.define("LOCKSTEP_BUILD_FUZZERS", False),
            self.define("HDF5_PREFER_PARALLEL", True),
        ]
        return args

    def setup_run_environment(self, env):
        env.set("LOCKSTEP_ROOT", self.prefix)

    @run_after("install")
    @on_package_attributes(run_tests=True)
    def check_install(self):
        lockstep = Executable(self.prefix.bin.lockstep)
        lockstep("--version")
        lockstep("doctor")
