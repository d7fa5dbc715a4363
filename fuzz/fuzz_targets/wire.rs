#![no_main]
// The property is in_mem_fuzz::wire (fuzz/src/lib.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| in_mem_fuzz::wire(data));
