//! Minimal NF images, built from an NF binary with no registry and no base image.
//!
//! The image is `FROM scratch` plus exactly what the binary needs to start: the binary
//! (debug info stripped when binutils' `strip` is there), and, for a dynamically linked
//! one, its ELF interpreter and every shared library it loads, found the way the dynamic
//! loader finds them (`DT_RUNPATH`/`DT_RPATH` with `$ORIGIN`, then the system library
//! folders) and put at the same paths inside the image, so the loader's defaults find
//! them. A static binary gets nothing else. The default user is [`NF_USER`], not root.
//!
//! It is built through the Engine API (`POST /build` with a tar context made here), so
//! `docker` itself is not needed, only the engine.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};

use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;
use goblin::elf::Elf;
use thiserror::Error;

use crate::engine::Engine;
use crate::labels;

/// The user (and group) NF images run as: the "nonroot" ID of distroless images, which
/// no Debian account uses.
pub const NF_USER: u32 = 65532;

/// What to build.
#[derive(Clone, Debug)]
pub struct ImageSpec {
    /// The NF binary (built-in NFs: the `onvm` binary).
    pub binary: PathBuf,
    /// The image's name, `NAME[:TAG]`.
    pub tag: String,
    /// The image holds the `onvm` binary and runs built-in NFs ([`labels::BUILTIN`]).
    pub builtin: bool,
    /// Strip debug info from the binary (with binutils' `strip`, when installed).
    pub strip: bool,
}

/// An image could not be built.
#[derive(Debug, Error)]
pub enum ImageError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// Which.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not an ELF executable of this machine.
    #[error("{path} is not an ELF executable: {why}")]
    NotElf {
        /// Which.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// A library the loader would need is nowhere to be found.
    #[error("{library}, needed by {by}, is not in {searched}")]
    MissingLibrary {
        /// Its name (`DT_NEEDED`).
        library: String,
        /// The object that needs it.
        by: PathBuf,
        /// Where it was looked for.
        searched: String,
    },
    /// The engine refused or failed the build.
    #[error("building image {tag}: {why}")]
    Build {
        /// The image.
        tag: String,
        /// The engine's words.
        why: String,
    },
}

/// One file of the image: where it goes, and the host file it is copied from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageFile {
    /// Absolute path inside the image.
    pub inside: PathBuf,
    /// The file on this machine (symbolic links resolved).
    pub source: PathBuf,
}

/// The binary at `/<its file name>`, then its interpreter and libraries (none for a
/// static binary), each once.
pub fn runtime_files(binary: &Path) -> Result<Vec<ImageFile>, ImageError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| ImageError::Read {
            path: path.into(),
            source,
        })
    };
    let name = binary.file_name().ok_or_else(|| ImageError::NotElf {
        path: binary.into(),
        why: "it names no file".into(),
    })?;
    let mut files = vec![ImageFile {
        inside: Path::new("/").join(name),
        source: canonical(binary)?,
    }];
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    // (object, its bytes' path): objects whose DT_NEEDED are still to be resolved.
    let mut todo = VecDeque::from([binary.to_path_buf()]);
    let mut first = true;
    while let Some(obj) = todo.pop_front() {
        let bytes = read(&obj)?;
        let elf = Elf::parse(&bytes).map_err(|e| ImageError::NotElf {
            path: obj.clone(),
            why: e.to_string(),
        })?;
        if first {
            first = false;
            if let Some(interp) = elf.interpreter {
                files.push(ImageFile {
                    inside: interp.into(),
                    source: canonical(Path::new(interp))?,
                });
                seen.insert(file_name(interp), interp.into());
            }
        }
        let dirs = search_dirs(&elf, &obj);
        for lib in &elf.libraries {
            if seen.contains_key(*lib) {
                continue;
            }
            let found =
                dirs.iter()
                    .map(|d| d.join(lib))
                    .find(|p| p.is_file())
                    .ok_or_else(|| ImageError::MissingLibrary {
                        library: lib.to_string(),
                        by: obj.clone(),
                        searched: dirs
                            .iter()
                            .map(|d| d.display().to_string())
                            .collect::<Vec<_>>()
                            .join(":"),
                    })?;
            seen.insert(lib.to_string(), found.clone());
            files.push(ImageFile {
                inside: found.clone(),
                source: canonical(&found)?,
            });
            todo.push_back(found);
        }
    }
    Ok(files)
}

fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

fn canonical(path: &Path) -> Result<PathBuf, ImageError> {
    std::fs::canonicalize(path).map_err(|source| ImageError::Read {
        path: path.into(),
        source,
    })
}

/// Where the loader looks for `elf`'s libraries: its run paths (`$ORIGIN` expanded),
/// `LD_LIBRARY_PATH`, the folders of `/etc/ld.so.conf`, then the system's defaults.
fn search_dirs(elf: &Elf<'_>, path: &Path) -> Vec<PathBuf> {
    let origin = path.parent().unwrap_or(Path::new("/")).to_string_lossy().into_owned();
    let mut dirs: Vec<PathBuf> = Vec::new();
    for list in elf.runpaths.iter().chain(&elf.rpaths) {
        for d in list.split(':').filter(|d| !d.is_empty()) {
            dirs.push(d.replace("$ORIGIN", &origin).replace("${ORIGIN}", &origin).into());
        }
    }
    if let Some(p) = std::env::var_os("LD_LIBRARY_PATH") {
        dirs.extend(std::env::split_paths(&p));
    }
    dirs.extend(ld_so_conf(Path::new("/etc/ld.so.conf"), 0));
    let triple = format!("{}-linux-gnu", std::env::consts::ARCH);
    for d in [
        format!("/lib/{triple}"),
        format!("/usr/lib/{triple}"),
        "/lib64".into(),
        "/usr/lib64".into(),
        "/lib".into(),
        "/usr/lib".into(),
    ] {
        dirs.push(d.into());
    }
    dirs
}

/// The folders listed in an `ld.so.conf` file, following `include` globs of the simple
/// `DIR/*.conf` form Debian uses.
fn ld_so_conf(file: &Path, depth: u32) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Vec::new();
    };
    let mut dirs = Vec::new();
    for line in text.lines().map(|l| l.split('#').next().unwrap_or("").trim()) {
        if let Some(pattern) = line.strip_prefix("include").map(str::trim) {
            let (dir, suffix) = match pattern.rsplit_once("/*") {
                Some((d, s)) => (PathBuf::from(d), s.to_string()),
                None => continue,
            };
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            let mut confs: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(&suffix))
                .collect();
            confs.sort();
            if depth < 4 {
                for c in confs {
                    dirs.extend(ld_so_conf(&c, depth + 1));
                }
            }
        } else if line.starts_with('/') {
            dirs.push(line.into());
        }
    }
    dirs
}

/// The Dockerfile of an image whose files are under `rootfs/` of the context.
fn dockerfile(entrypoint: &Path, spec: &ImageSpec) -> String {
    let binary = spec.binary.display().to_string().replace('"', "");
    format!(
        "FROM scratch\nCOPY rootfs/ /\nUSER {NF_USER}:{NF_USER}\nLABEL {}=\"{}\" {}=\"{binary}\"\nENTRYPOINT [\"{}\"]\n",
        labels::BUILTIN,
        spec.builtin,
        labels::BINARY,
        entrypoint.display(),
    )
}

/// The build context: `Dockerfile` and `rootfs/` with `files` (the binary stripped
/// when asked and possible), as a tar archive. Also says whether it stripped.
pub fn context(spec: &ImageSpec, files: &[ImageFile]) -> Result<(Vec<u8>, bool), ImageError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImageError::Read { path, source }
    };
    let mut tar = tar::Builder::new(Vec::new());
    tar.mode(tar::HeaderMode::Deterministic);
    let entry = &files[0].inside;
    let text = dockerfile(entry, spec);
    append(&mut tar, Path::new("Dockerfile"), text.as_bytes(), 0o644).map_err(io(Path::new("Dockerfile")))?;
    let mut stripped = false;
    for (k, f) in files.iter().enumerate() {
        let bytes = match (k, spec.strip) {
            (0, true) => match strip(&f.source) {
                Some(b) => {
                    stripped = true;
                    b
                }
                None => std::fs::read(&f.source).map_err(io(&f.source))?,
            },
            _ => std::fs::read(&f.source).map_err(io(&f.source))?,
        };
        let inside = Path::new("rootfs").join(f.inside.strip_prefix("/").unwrap_or(&f.inside));
        append(&mut tar, &inside, &bytes, 0o755).map_err(io(&f.source))?;
    }
    let out = tar.into_inner().map_err(io(Path::new("context")))?;
    Ok((out, stripped))
}

fn append(tar: &mut tar::Builder<Vec<u8>>, path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(bytes.len() as u64);
    h.set_mode(mode);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, path, bytes)
}

/// `source` without debug info, by binutils' `strip`; `None` when that is not possible
/// (no binutils): the image is then bigger, not wrong.
fn strip(source: &Path) -> Option<Vec<u8>> {
    let out = std::env::temp_dir().join(format!(
        "onvm-strip-{}-{}",
        std::process::id(),
        file_name(&source.to_string_lossy())
    ));
    let ok = std::process::Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&out)
        .arg(source)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let bytes = ok.then(|| std::fs::read(&out).ok()).flatten();
    let _ = std::fs::remove_file(&out);
    bytes
}

/// What a build made.
#[derive(Clone, Debug)]
pub struct Built {
    /// The image ID (`sha256:…`).
    pub id: String,
    /// Its size in bytes, as the engine counts it.
    pub size: u64,
    /// The files in it.
    pub files: Vec<ImageFile>,
    /// Whether the binary's debug info was stripped.
    pub stripped: bool,
}

/// Build the image of `spec` on `engine`.
pub fn build(engine: &Engine, spec: &ImageSpec) -> Result<Built, ImageError> {
    let files = runtime_files(&spec.binary)?;
    let (tar, stripped) = context(spec, &files)?;
    let failed = |why: String| ImageError::Build {
        tag: spec.tag.clone(),
        why,
    };
    let mut labels_ = BTreeMap::new();
    labels_.insert(labels::BUILTIN.to_string(), spec.builtin.to_string());
    let options = BuildImageOptionsBuilder::new()
        .dockerfile("Dockerfile")
        .t(&spec.tag)
        .rm(true)
        .forcerm(true)
        .build();
    let docker = engine.docker();
    let log = engine.block_on(async {
        let mut stream = docker.build_image(options, None, Some(bollard::body_full(tar.into())));
        let mut log = String::new();
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| e.to_string())?;
            if let Some(d) = info.error_detail {
                return Err(format!("{}\n{log}", d.message.unwrap_or_default()));
            }
            if let Some(s) = info.stream {
                log.push_str(&s);
            }
        }
        Ok(log)
    });
    log.map_err(failed)?;
    let inspect = engine
        .block_on(docker.inspect_image(&spec.tag))
        .map_err(|e| failed(format!("the engine did not keep it: {e}")))?;
    Ok(Built {
        id: inspect.id.unwrap_or_default(),
        size: inspect.size.unwrap_or_default().max(0) as u64,
        files,
        stripped,
    })
}

/// Whether image `tag` exists on `engine`, and whether it runs built-in NFs.
pub fn inspect(engine: &Engine, tag: &str) -> Result<Option<bool>, bollard::errors::Error> {
    match engine.block_on(engine.docker().inspect_image(tag)) {
        Ok(i) => Ok(Some(
            i.config
                .and_then(|c| c.labels)
                .and_then(|l| l.get(labels::BUILTIN).cloned())
                .is_some_and(|v| v == "true"),
        )),
        Err(e) if crate::engine::is_gone(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Write `files` (as `runtime_files` gives them) one per line, for `onvm image build`.
pub fn describe(files: &[ImageFile], out: &mut impl std::io::Write) -> std::io::Result<()> {
    for f in files {
        let size = std::fs::metadata(&f.source).map_or(0, |m| m.len());
        writeln!(
            out,
            "  {} ({} KiB, from {})",
            f.inside.display(),
            size / 1024,
            f.source.display()
        )?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This test binary is a dynamically linked executable of this machine: its image
    /// holds it, the loader and libc, each at the path the loader uses.
    #[test]
    fn a_dynamic_binary_brings_its_loader_and_libraries() {
        let me = std::env::current_exe().unwrap();
        let files = runtime_files(&me).unwrap();
        assert_eq!(files[0].inside, Path::new("/").join(me.file_name().unwrap()));
        let inside: Vec<String> = files.iter().map(|f| f.inside.display().to_string()).collect();
        assert!(inside.iter().any(|p| p.contains("ld-linux")), "{inside:?}");
        assert!(inside.iter().any(|p| p.ends_with("/libc.so.6")), "{inside:?}");
        let mut dedup = inside.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), inside.len(), "each file once: {inside:?}");
        for f in &files {
            assert!(f.source.is_file(), "{f:?}");
        }
    }

    #[test]
    fn the_context_has_a_scratch_dockerfile_with_a_non_root_user_and_the_files() {
        let me = std::env::current_exe().unwrap();
        let files = runtime_files(&me).unwrap();
        let spec = ImageSpec {
            binary: me.clone(),
            tag: "t".into(),
            builtin: false,
            strip: false,
        };
        let (tar, stripped) = context(&spec, &files).unwrap();
        assert!(!stripped);
        let mut a = tar::Archive::new(&tar[..]);
        let mut names = Vec::new();
        let mut dockerfile = String::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let p = e.path().unwrap().display().to_string();
            if p == "Dockerfile" {
                std::io::Read::read_to_string(&mut e, &mut dockerfile).unwrap();
            }
            names.push(p);
        }
        assert!(dockerfile.starts_with("FROM scratch\n"), "{dockerfile}");
        assert!(
            dockerfile.contains(&format!("USER {NF_USER}:{NF_USER}")),
            "{dockerfile}"
        );
        assert_eq!(names.len(), files.len() + 1);
        assert!(
            names
                .iter()
                .any(|n| n.starts_with("rootfs/") && n.ends_with("/libc.so.6")),
            "{names:?}"
        );
    }

    #[test]
    fn not_an_elf_file_is_named() {
        let f = std::env::temp_dir().join(format!("onvm-not-elf-{}", std::process::id()));
        std::fs::write(&f, b"#!/bin/sh\necho hi\n").unwrap();
        let e = runtime_files(&f).unwrap_err();
        let _ = std::fs::remove_file(&f);
        assert!(matches!(e, ImageError::NotElf { .. }), "{e}");
    }
}
