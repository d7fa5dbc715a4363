#![no_main]
// The property is in_mem_fuzz::manifest (fuzz/src/lib.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| in_mem_fuzz::manifest(data));
