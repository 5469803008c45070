"""install-test.py ROOT: checks the Python package that `make install` put
under ROOT (DESTDIR/PREFIX), run with PYTHONPATH at its dist-packages: it
imports, loads the libproxyfs.so.2 installed beside it (not another), and a
mount with no daemon fails cleanly with ENODEV."""

import errno
import os
import sys

root = os.path.realpath(sys.argv[1])
import proxyfs  # noqa: E402

assert os.path.realpath(proxyfs.__file__).startswith(root + "/"), proxyfs.__file__
lib = proxyfs.load_library()
assert os.path.realpath(lib) == os.path.join(root, "lib", "libproxyfs.so.2"), lib
try:
    proxyfs.Volume("default", server="/nonexistent/proxyfsd.sock").mount()
    sys.exit("install-test: mount without a daemon succeeded")
except OSError as e:
    assert e.errno == errno.ENODEV, e
print(f"install-test: python {proxyfs.__version__} imports from {proxyfs.__file__}, "
      f"loads {lib}; mount without a daemon: ENODEV")
