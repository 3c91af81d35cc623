//! Any UTF-8 text as a config file: parsing and checking must not panic (a bad file is a
//! `ConfigError` with its line), and the error must format.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onvm_proto::config::Config;

fuzz_target!(|text: &str| {
    if let Err(e) = Config::from_toml(text) {
        let _ = e.to_string();
    }
});
