#![no_main]
// The property is in_mem_fuzz::history_file (fuzz/src/lib.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| in_mem_fuzz::history_file(data));
