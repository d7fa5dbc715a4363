'use strict'
// See package.json: cross-compilation toolchains are not installed here.
throw new Error('@napi-rs/cross-toolchain is not installed in this repository: in-mem builds for the host only (no --use-napi-cross)')
