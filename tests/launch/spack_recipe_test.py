#!/usr/bin/env python3
"""The Spack recipe (launch/spack/package.py) agrees with the CMake build.

  spack_recipe_test.py SOURCE_DIR

Checks, reading both files without Spack (the recipe is parsed, not run):
  1. every option(LOCKSTEP_...) of CMakeLists.txt is set in cmake_args, by
     define_from_variant (a variant with the same default) or by define;
  2. every variant is passed to CMake, and every LOCKSTEP_ name the recipe
     defines is an option or cache variable of the build;
  3. every package the top-level CMakeLists.txt finds (find_package,
     pkg_check_modules) is a depends_on of the recipe, and a dependency found
     only under if(LOCKSTEP_X) is conditional on X's variant (when="+x").
Then it mutates copies of both files (a flipped default, a new option, a new
dependency, a dead variant) and checks that each mutation is caught.
"""
import ast
import pathlib
import re
import sys
import tempfile

# find_package / pkg_check_modules name -> Spack package name.
SPACK_NAME = {
    "MPI": "mpi", "HDF5": "hdf5", "TBB": "tbb", "nlohmann_json": "nlohmann-json",
    "CLI11": "cli11", "fmt": "fmt", "OpenSSL": "openssl",
    "ucx": "ucx", "benchmark": "benchmark", "GTest": "googletest",
    "PkgConfig": "pkgconfig", "sentencepiece": "sentencepiece", "libpcre2-8": "pcre2",
    "libutf8proc": "utf8proc", "Git": None, "Threads": None,
}


def cmake_facts(cmakelists: str, extra_cmake: list[str]):
    """Options {name: default}, cache variables, and dependencies {pkg: guard}."""
    options = {}
    for m in re.finditer(r'option\(\s*(LOCKSTEP_\w+)\s+"[^"]*"\s+(ON|OFF)\s*\)', cmakelists):
        options[m.group(1)] = m.group(2) == "ON"
    cache = set()
    for text in [cmakelists] + extra_cmake:
        cache |= set(re.findall(r'set\(\s*(LOCKSTEP_\w+)\s+[^)]*?\bCACHE\b', text))
    deps = {}
    guard_stack = []
    for line in cmakelists.splitlines():
        line = line.split("#", 1)[0].strip()
        m = re.match(r'if\((?:NOT\s+)?(\w+)\)', line)
        if m:
            guard_stack.append(m.group(1) if m.group(1) in options and "NOT" not in line else None)
            continue
        if re.match(r'if\(', line):
            guard_stack.append(None)
            continue
        if re.match(r'endif\(', line):
            guard_stack.pop()
            continue
        m = re.match(r'find_package\((\w+)', line) or re.match(
            r'pkg_check_modules\(\w+\s+(?:REQUIRED\s+)?(?:QUIET\s+)?(?:IMPORTED_TARGET\s+)?([\w.+-]+)', line)
        if m:
            guard = next((g for g in reversed(guard_stack) if g), None)
            deps[m.group(1)] = guard
    return options, cache, deps


def recipe_facts(recipe: str):
    tree = ast.parse(recipe)
    variants, from_variant, defines, depends = {}, {}, set(), []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        args = [a.value for a in node.args if isinstance(a, ast.Constant)]
        kwargs = {k.arg: k.value.value for k in node.keywords if isinstance(k.value, ast.Constant)}
        if name == "variant" and args:
            variants[args[0]] = kwargs.get("default")
        elif name == "define_from_variant" and len(args) == 2:
            from_variant[args[0]] = args[1]
        elif name == "define" and args:
            defines.add(args[0])
        elif name == "depends_on" and args:
            spec = args[0]
            depends.append((re.match(r'[\w-]+', spec).group(0), kwargs.get("when", "")))
    return variants, from_variant, defines, depends


def check(cmakelists: str, extra_cmake: list[str], recipe: str) -> list[str]:
    options, cache, deps = cmake_facts(cmakelists, extra_cmake)
    variants, from_variant, defines, depends = recipe_facts(recipe)
    errors = []
    if not options:
        errors.append("CMakeLists.txt: no option(LOCKSTEP_...) found (parser out of date?)")
    for option, default in sorted(options.items()):
        if option in from_variant:
            variant = from_variant[option]
            if variant not in variants:
                errors.append(f"package.py: define_from_variant('{option}', '{variant}'): no variant '{variant}'")
            elif variants[variant] is not default:
                errors.append(f"package.py: variant '{variant}' defaults to {variants[variant]}, "
                              f"CMake option {option} to {'ON' if default else 'OFF'}")
        elif option not in defines:
            errors.append(f"package.py: CMake option {option} is not set in cmake_args "
                          f"(add a variant and define_from_variant, or a define)")
    for name in sorted(set(from_variant) | {d for d in defines if d.startswith("LOCKSTEP_")}):
        if name not in options and name not in cache:
            errors.append(f"package.py: sets {name}, which is no option or cache variable of the build")
    used = set(from_variant.values())
    for variant in sorted(variants):
        if variant not in used:
            errors.append(f"package.py: variant '{variant}' is never passed to CMake")
    depended = {}
    for package, when in depends:
        depended.setdefault(package, []).append(when)
    option_variant = {opt: var for opt, var in from_variant.items()}
    for dep, guard in sorted(deps.items()):
        if dep not in SPACK_NAME:
            errors.append(f"CMakeLists.txt finds '{dep}': add it to SPACK_NAME in "
                          f"tests/launch/spack_recipe_test.py and a depends_on to package.py")
            continue
        spack = SPACK_NAME[dep]
        if spack is None:
            continue
        if spack not in depended:
            errors.append(f"package.py: no depends_on('{spack}') for CMake's {dep}")
            continue
        if guard and guard in option_variant:
            want = f"+{option_variant[guard]}"
            if want not in depended[spack]:
                errors.append(f"package.py: depends_on('{spack}') should be when='{want}' "
                              f"(CMake finds {dep} only if {guard})")
    return errors


def mutations(cmakelists: str, recipe: str):
    yield ("flipped default", cmakelists,
           recipe.replace('variant("ucx", default=True', 'variant("ucx", default=False'))
    yield ("new CMake option", cmakelists.replace(
        "option(LOCKSTEP_WERROR", 'option(LOCKSTEP_WITH_CUDA "x" OFF)\noption(LOCKSTEP_WERROR'), recipe)
    yield ("new dependency", cmakelists.replace(
        "find_package(TBB REQUIRED)", "find_package(TBB REQUIRED)\nfind_package(Zstd REQUIRED)"), recipe)
    yield ("dead variant", cmakelists, recipe.replace(
        'variant("werror"', 'variant("cuda", default=False, description="x")\n    variant("werror"'))
    yield ("unconditional ucx", cmakelists, recipe.replace('depends_on("ucx", when="+ucx")', 'depends_on("ucx")'))


def main() -> int:
    source = pathlib.Path(sys.argv[1])
    cmakelists = (source / "CMakeLists.txt").read_text()
    extra = [p.read_text() for p in sorted((source / "cmake").glob("*.cmake"))]
    recipe = (source / "launch/spack/package.py").read_text()
    errors = check(cmakelists, extra, recipe)
    for error in errors:
        print(f"spack_recipe_test: {error}")
    if errors:
        return 1
    options, _, deps = cmake_facts(cmakelists, extra)
    print(f"spack_recipe_test: {len(options)} options and {len(deps)} dependencies agree")
    for what, c, r in mutations(cmakelists, recipe):
        if c == cmakelists and r == recipe:
            print(f"spack_recipe_test: self-test '{what}' did not change anything (update the mutation)")
            return 1
        if not check(c, extra, r):
            print(f"spack_recipe_test: self-test '{what}' was not detected")
            return 1
    print("spack_recipe_test: every self-test mutation detected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
