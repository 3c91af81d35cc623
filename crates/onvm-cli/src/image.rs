//! `onvm image build`: a minimal container image of an NF binary.
//!
//! Without `--binary` the image holds this `onvm` binary and runs every built-in NF
//! (`image = "onvm/nfs"` in a config, with the NF's `name`); with `--binary` it holds an
//! NF of one's own (a crate built against `onvm-nf`), which gets its config entry's
//! `args`. See docs/CONTAINERS.md.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use onvm_container::image::{self, ImageSpec};
use onvm_container::{Engine, NF_USER};

use crate::CliResult;

/// `onvm image`.
#[derive(Args, Debug)]
pub struct ImageCmd {
    #[command(subcommand)]
    cmd: ImageSub,
}

#[derive(Subcommand, Debug)]
enum ImageSub {
    /// Build an NF image (FROM scratch: the binary and the libraries it loads).
    Build(BuildArgs),
}

/// `onvm image build`.
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// The NF binary (default: this `onvm`, which runs the built-in NFs).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// The image's name (default: `onvm/nfs:latest`, or `onvm/BINARY-NAME:latest`).
    #[arg(long)]
    tag: Option<String>,
    /// Keep the binary's debug info.
    #[arg(long)]
    no_strip: bool,
    /// The Docker engine (`unix:///PATH`; default: DOCKER_HOST, or /var/run/docker.sock).
    #[arg(long)]
    docker: Option<String>,
}

/// Run `onvm image …`.
pub fn run(a: ImageCmd) -> CliResult {
    match a.cmd {
        ImageSub::Build(b) => build(b),
    }
}

fn build(a: BuildArgs) -> CliResult {
    let (binary, builtin) = match a.binary {
        Some(b) => (b, false),
        None => (
            std::env::current_exe().map_err(|e| format!("cannot find the onvm binary: {e}"))?,
            true,
        ),
    };
    let tag = match a.tag {
        Some(t) => t,
        None if builtin => "onvm/nfs:latest".into(),
        None => format!("onvm/{}:latest", default_name(&binary)),
    };
    let engine = Engine::connect(a.docker.as_deref()).map_err(|e| e.to_string())?;
    let spec = ImageSpec {
        binary: binary.clone(),
        tag: tag.clone(),
        builtin,
        strip: !a.no_strip,
    };
    let built = image::build(&engine, &spec).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    let _ = image::describe(&built.files, &mut out);
    onvm_mgr::stats::emit(format_args!(
        "onvm image: built {tag} ({}, {:.1} MB{}, user {NF_USER}) from {}{}\n",
        &built.id[..built.id.len().min(19)],
        built.size as f64 / 1e6,
        if built.stripped { ", debug info stripped" } else { "" },
        binary.display(),
        if builtin {
            "; use it as image = \"".to_string() + &tag + "\" with a built-in NF's name"
        } else {
            String::new()
        },
    ));
    Ok(ExitCode::SUCCESS)
}

/// An image name from a binary's file name: lower case, and only the characters image
/// names allow.
fn default_name(binary: &std::path::Path) -> String {
    let stem = binary
        .file_name()
        .map_or_else(|| "nf".into(), |n| n.to_string_lossy().to_lowercase());
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    clean.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_are_valid_image_names() {
        assert_eq!(default_name(std::path::Path::new("/x/target/release/My_NF")), "my_nf");
        assert_eq!(default_name(std::path::Path::new("fw v2+")), "fw-v2");
    }
}
