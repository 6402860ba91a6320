#![no_main]
use glint_formats::Format;
libfuzzer_sys::fuzz_target!(|data: &[u8]| glint_formats_fuzz::check(&[Format::Vhdx], data));
