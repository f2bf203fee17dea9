#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| _core::fuzz_targets::opaque_format(data));
