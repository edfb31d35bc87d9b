//! What the command-line tests share: a fresh farol directory and running the real binary.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) struct Dir {
    _tmp: tempfile::TempDir,
    pub(crate) path: PathBuf,
}

impl Dir {
    /// A farol directory at `path`, removed with `tmp`.
    pub(crate) fn new(tmp: tempfile::TempDir, path: PathBuf) -> Dir {
        Dir { _tmp: tmp, path }
    }
}

pub(crate) fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

pub(crate) fn init() -> Dir {
    init_with(&[])
}

/// A farol directory made by `farol init` with these options, and the example feeds.
pub(crate) fn init_with(options: &[&str]) -> Dir {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("farol");
    let out = Command::new(env!("CARGO_BIN_EXE_farol")).arg("init").arg(&path).args(options).output().unwrap();
    assert!(out.status.success());
    for feed in ["example-sinkhole", "partner-intelmq"] {
        std::fs::copy(examples().join(format!("feeds/{feed}.toml")), path.join(format!("feeds.d/{feed}.toml")))
            .unwrap();
    }
    Dir { _tmp: tmp, path }
}

/// A farol directory as `init` makes it, whose farol.toml names the PostgreSQL schema's database
/// as its store.
pub(crate) fn init_on_postgres(schema: &farol_store::testing::PostgresSchema) -> Dir {
    let d = init();
    let path = d.path.join("farol.toml");
    let toml = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, toml.replace("path = \"data/farol.db\"", &format!("url = \"{}\"", schema.url))).unwrap();
    d
}

/// The farol binary on a farol directory, with these arguments, to run as the test needs.
pub(crate) fn command(dir: &Dir, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_farol"));
    c.arg("-d").arg(&dir.path).args(args);
    c
}

pub(crate) fn farol(dir: &Dir, args: &[&str]) -> Output {
    command(dir, args).output().unwrap()
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub(crate) fn write(dir: &Dir, name: &str, bytes: &[u8]) -> String {
    let p = dir.path.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_string_lossy().into_owned()
}

/// `farol serve` on a port the system picks (`--listen 127.0.0.1:0`), with these extra
/// arguments, once it accepts connections: the port is the one it says it serves on.
pub(crate) fn serve(d: &Dir, extra: &[&str]) -> (std::process::Child, u16) {
    use std::io::BufRead;
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend(extra);
    let mut server =
        command(d, &args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let mut lines = std::io::BufReader::new(server.stdout.take().unwrap()).lines();
    let port = lines.by_ref().map_while(Result::ok).find_map(|l| {
        let addr = l.strip_prefix("farol serving on http://")?.split_whitespace().next()?.to_owned();
        addr.parse::<std::net::SocketAddr>().ok().map(|a| a.port())
    });
    // The rest of its output, read so that it never blocks writing.
    std::thread::spawn(move || lines.for_each(drop));
    let Some(port) = port else {
        let _ = server.kill();
        server.wait().unwrap();
        panic!("farol serve did not start");
    };
    (server, port)
}
