//! Configuration parsing and validation: any text gives a config or a list of
//! problems, never a panic. File references resolve to nothing (embedded base).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokengate::Config;
use tokengate::config::FileBase;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::from_yaml_str(text, FileBase::Embedded, "fuzz");
    }
});
