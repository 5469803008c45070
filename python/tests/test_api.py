"""The public API is documented and typed, and covers the reference API."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys

import proxyfs
from conftest import REPO

# The calls of the reference API (libgfapi-python) that issue 17 lists,
# and the extra ones its documentation has that this package keeps.
VOLUME_CALLS = """mount umount mounted stat lstat exists isdir isfile islink getsize
getatime getmtime getctime listdir listdir_with_stat scandir walk makedirs mkdir
rmdir rmtree rename remove unlink symlink readlink link chmod chown utime access
chdir getcwd statvfs getxattr setxattr listxattr removexattr setfsuid setfsgid
copyfile copy copy2 copytree move copyfileobj copymode copystat samefile fopen
open opendir mknod set_logging disable_logging get_volume_id""".split()
FILE_CALLS = """read readinto write lseek fstat fsync fdatasync ftruncate fallocate
discard zerofill fchmod fchown fgetxattr fsetxattr flistxattr fremovexattr dup
close closed fgetsize mode""".split()  # and the attribute name
DIRENTRY_CALLS = "name path inode is_dir is_file is_symlink stat".split()


def test_reference_calls_exist():
    for cls, names in ((proxyfs.Volume, VOLUME_CALLS),
                       (proxyfs.File, FILE_CALLS),
                       (proxyfs.DirEntry, DIRENTRY_CALLS)):
        missing = [n for n in names if not hasattr(cls, n)
                   and n not in getattr(cls, "__slots__", ())]
        assert missing == [], f"{cls.__name__} lacks {missing}"


def _public_functions():
    for name in proxyfs.__all__:
        obj = getattr(proxyfs, name)
        if inspect.isclass(obj) and obj.__module__.startswith("proxyfs"):
            yield f"proxyfs.{name}", obj
            for attr, member in vars(obj).items():
                if attr.startswith("_") and attr not in ("__init__",):
                    continue
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                if isinstance(member, property):
                    yield f"proxyfs.{name}.{attr}", member.fget
                elif inspect.isfunction(member):
                    yield f"proxyfs.{name}.{attr}", member
        elif inspect.isfunction(obj):
            yield f"proxyfs.{name}", obj


def test_everything_public_has_a_docstring_and_type_hints():
    undocumented, untyped = [], []
    for qual, obj in _public_functions():
        if not (obj.__doc__ or "").strip():
            undocumented.append(qual)
        if inspect.isfunction(obj):
            sig = inspect.signature(obj)
            for p in sig.parameters.values():
                if p.name in ("self", "cls"):
                    continue
                if p.annotation is inspect.Parameter.empty:
                    untyped.append(f"{qual}({p.name})")
            if sig.return_annotation is inspect.Signature.empty:
                untyped.append(f"{qual} -> ?")
    assert undocumented == []
    assert untyped == []


def _load_in_child(env_changes: dict) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    for k, v in env_changes.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    code = "import proxyfs; print(proxyfs.load_library())"
    return subprocess.run([sys.executable, "-c", code], env=env,
                          cwd="/", capture_output=True, text=True,
                          timeout=60)


def test_library_found_through_the_dynamic_loader():
    libdir = os.path.join(REPO, "libproxyfs")
    r = _load_in_child({"PROXYFS_LIBRARY": None, "LD_LIBRARY_PATH": libdir,
                        "PYTHONPATH": os.path.join(REPO, "python")})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "libproxyfs.so.2"


def test_library_from_the_environment_must_exist():
    r = _load_in_child({"PROXYFS_LIBRARY": "/nonexistent/libproxyfs.so.2",
                        "PYTHONPATH": os.path.join(REPO, "python")})
    assert r.returncode != 0
    assert "PROXYFS_LIBRARY" in r.stderr and "not found" in r.stderr


def test_the_package_under_test_is_the_one_asked_for():
    src = os.path.join(REPO, "python", "proxyfs")
    here = os.path.dirname(os.path.realpath(proxyfs.__file__))
    if os.environ.get("PROXYFS_TEST_INSTALLED"):
        assert here != os.path.realpath(src)
    else:
        assert here == os.path.realpath(src)
