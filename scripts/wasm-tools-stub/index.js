'use strict'
// See package.json: WebAssembly build tools are not installed here.
throw new Error('@napi-rs/wasm-tools is not installed in this repository: in-mem builds native targets only')
