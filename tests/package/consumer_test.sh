#!/bin/sh
# Installs this build into a temporary prefix, then builds and runs the consumer project against
# it twice: with CMake (find_package: the shared and the static library) and with pkg-config.
# usage: consumer_test.sh BUILD_DIR CONSUMER_SOURCE_DIR LIBDIR GENERATOR [COMPILER_LAUNCHER]
set -eu
build=$1 consumer=$2 libdir=$3 generator=$4 launcher=${5:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" >/dev/null

echo "== CMake: find_package(rendr)"
cmake -S "$consumer" -B "$work/cmake" -G "$generator" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" ${launcher:+-DCMAKE_CXX_COMPILER_LAUNCHER="$launcher"} >/dev/null
cmake --build "$work/cmake" -j 2 >/dev/null
"$work/cmake/consumer"
"$work/cmake/consumer_static"
# Each links what it says: the installed shared library, or nothing of rendr at run time.
ldd "$work/cmake/consumer" | grep -q "librendr.so.* => $prefix/$libdir/"
if ldd "$work/cmake/consumer_static" | grep -q librendr; then
  echo "consumer_static needs a shared librendr" >&2
  exit 1
fi

echo "== pkg-config rendr"
export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
${launcher} c++ -o "$work/consumer_pc" "$consumer/main.cpp" $(pkg-config --cflags rendr) \
  $(pkg-config --libs rendr) -Wl,-rpath,"$(pkg-config --variable=libdir rendr)"
"$work/consumer_pc"
ldd "$work/consumer_pc" | grep -q "librendr.so.* => $prefix/$libdir/"

echo "== the other Asio flavour's definitions are refused"
# With the package's definitions the headers compile; adding the other flavour's must not.
cflags=$(pkg-config --cflags rendr)
case "$cflags" in
  *RENDR_ASIO_BOOST*) wrong="-DASIO_STANDALONE" ;;
  *) wrong="-URENDR_ASIO_BOOST -UASIO_STANDALONE" ;;
esac
echo '#include "rendr/rendr.hpp"' > "$work/flavour.cpp"
c++ -fsyntax-only $cflags "$work/flavour.cpp"
if c++ -fsyntax-only $cflags $wrong "$work/flavour.cpp" 2>/dev/null; then
  echo "rendr's headers compiled with the other Asio flavour's definitions ($wrong)" >&2
  exit 1
fi
