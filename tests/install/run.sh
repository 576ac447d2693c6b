#!/usr/bin/env bash
# Installs the build tree into a staging prefix, then builds and runs a tiny
# host against it twice: with find_package(tollgate) and with pkg-config.
set -euo pipefail
build=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$here/consumer" -B "$work/cmake" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/cmake" >/dev/null
"$work/cmake/consumer_c"
"$work/cmake/consumer_cpp"
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
cc -std=c99 -Wall -Werror "$here/consumer/consumer.c" $(pkg-config --cflags --libs tollgate) -o "$work/consumer_pc"
"$work/consumer_pc"
echo "install consumer: find_package and pkg-config builds both ran"
