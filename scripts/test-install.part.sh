#!/usr/bin/env bash
# Installs Troupe into a scratch prefix and checks that another project can
# use it: pkg-config, CMake find_package(troupe), the README's example
# program builds and runs, every public header stands alone with no
# third-party header (libuv, ck, msgpack-c: their types would be Troupe's
# ABI), and the shared library exports only tp_* symbols.
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=$(mktemp -d /tmp/troupe-install.XXXXXX)
trap 'rm -rf "$PREFIX"' EXIT

cmake --install build/release --prefix "$PREFIX" >/dev/null
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig:$PREFIX/lib/x86_64-linux-gnu/pkgconfig"
export LD_LIBRARY_PATH="$PREFIX/lib:$PREFIX/lib/x86_64-linux-gnu"

# The README's first program is docs/examples/hello.c, verbatim.
if ! diff <(awk '/^```c$/{f=1;next} /^```$/{if(f)exit} f' README.md) \
          docs/examples/hello.c >/dev/null; then
  echo "install: README's example differs from docs/examples/hello.c"; exit 1
fi
echo "install: pkg-config troupe $(pkg-config --modversion troupe)"
cc -std=c11 -Wall -Wextra -Werror docs/examples/hello.c \
   $(pkg-config --cflags --libs troupe) -o "$PREFIX/hello-pc"
out=$("$PREFIX/hello-pc")
echo "$out" | grep -q "hello world #3" || { echo "$out"; exit 1; }
echo "install: README example via pkg-config: ok"

cmake -S docs/examples/consumer -B "$PREFIX/consumer" \
      -DCMAKE_PREFIX_PATH="$PREFIX" >/dev/null
cmake --build "$PREFIX/consumer" >/dev/null
"$PREFIX/consumer/hello" | grep -q "hello world #3"
echo "install: find_package(troupe) consumer: ok"

# Each installed header alone, freestanding: only the compiler's own
# headers (stddef.h, stdint.h, stdbool.h, stdarg.h) and Troupe's are on the
# include path, so any other include fails; in C11 and C++11.
inc=$(dirname "$(find "$PREFIX" -name troupe.h -path '*/include/*' | head -1)")
freestanding=(-ffreestanding -nostdinc -isystem "$(cc -print-file-name=include)")
nh=0
for h in "$inc"/troupe.h "$inc"/troupe/*.h; do
  cc -std=c11 -Wall -Wextra -Werror -pedantic "${freestanding[@]}" -I"$inc" \
     -fsyntax-only -x c "$h" || { echo "install: $h does not stand alone"; exit 1; }
  c++ -std=c++11 -Wall -Wextra -Werror -I"$inc" -fsyntax-only -x c++ "$h" \
     || { echo "install: $h does not compile as C++"; exit 1; }
  nh=$((nh + 1))
done
echo "install: $nh public headers stand alone (no libuv/ck/msgpack-c, C and C++): ok"

lib=$(find "$PREFIX" -name 'libtroupe.so.*.*' | head -1)
bad=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^tp_' \
      | grep -v -E '^(_init|_fini|_edata|_end|__bss_start)$' || true)
if [ -n "$bad" ]; then
  echo "install: symbols exported beyond the public API:"; echo "$bad"; exit 1
fi
echo "install: libtroupe.so exports $(nm -D --defined-only "$lib" | grep -c ' tp_') tp_* symbols only"
