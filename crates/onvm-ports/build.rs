//! Builds the DPDK shim (`csrc/dpdk_shim.c`) and links libdpdk, only with the `dpdk`
//! feature; without it there is nothing to do.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "dpdk")]
    dpdk();
}

#[cfg(feature = "dpdk")]
fn dpdk() {
    println!("cargo:rerun-if-changed=csrc/dpdk_shim.c");
    let lib = pkg_config::Config::new()
        .atleast_version("22.11")
        .probe("libdpdk")
        .unwrap_or_else(|e| {
            panic!("the dpdk feature needs DPDK 22.11's development files (Debian: apt-get install libdpdk-dev): {e}")
        });
    let mut build = cc::Build::new();
    build
        .file("csrc/dpdk_shim.c")
        .warnings(true)
        .flag_if_supported("-Wno-unused-parameter");
    for dir in &lib.include_paths {
        build.include(dir);
    }
    // rte_config.h is force-included by DPDK's cflags, and -march matters to its headers.
    for (k, v) in &lib.defines {
        build.define(k, v.as_deref());
    }
    let cflags = std::process::Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
        .expect("run pkg-config");
    let cflags = String::from_utf8_lossy(&cflags.stdout);
    let mut it = cflags.split_whitespace();
    while let Some(f) = it.next() {
        if f == "-include" {
            if let Some(h) = it.next() {
                build.flag("-include").flag(h);
            }
        } else if f.starts_with("-march") || f.starts_with("-m") {
            build.flag(f);
        }
    }
    build.compile("onvm_dpdk_shim");
}
